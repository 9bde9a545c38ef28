"""Results for receipt software (レセコン): the ``OQSsiquc01res_face_*.xml`` file of each
completed check, written into the folder the clinic configures, and the outage path.

- ``settings``: the ``[receipt_files]`` settings and the clinic's 医療機関コード;
- ``document``: the file's name and bytes (CP932 or UTF-8, 外字 handling);
- ``folder``: writing a file whole (temporary name, fsync, rename);
- ``queue``: exactly one file per completed check, retried while the folder is away;
- ``manual``: manual confirmations while the national system is down, and the re-check;
- ``labels``: words for the coded fields, for the detail page and the exports.

See docs/receipt-files.md.
"""
