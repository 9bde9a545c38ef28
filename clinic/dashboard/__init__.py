"""The staff dashboard: today's checks, details, the staff queue, kiosks, exports, access log.

Served on its own TLS listener without client certificates (staff use ordinary browsers); every
page but the login form needs a session. Pages are rendered on the server (Jinja2 with
autoescaping); new and changed rows arrive by server-sent events (``/events``), so the page
never polls. Forms carry the session's CSRF token; cookies are ``Secure``, ``HttpOnly`` and
``SameSite=Strict``; a strict Content-Security-Policy allows only the server's own scripts.
Each view of a patient's record (detail page, export) is written to the access log.

- :mod:`~clinic.dashboard.app`: the application, its routes and its error page;
- :mod:`~clinic.dashboard.site`: what every page shares (templates, language, forms, rows);
- :mod:`~clinic.dashboard.login`: sessions, CSRF, signing in and out, the language switch;
- :mod:`~clinic.dashboard.pages`: today's list, a verification's detail, the queue, kiosks,
  the access log;
- :mod:`~clinic.dashboard.export`: a day as CSV or JSON for receipt software;
- :mod:`~clinic.dashboard.live`: new and changed rows as server-sent events;
- :mod:`~clinic.dashboard.static`: the stylesheet, script and icon;
- :mod:`~clinic.dashboard.headers`: the protective headers on every answer.
"""
