// Live updates for the staff dashboard: server-sent events only, no polling loop.
// Every signed-in page follows the kiosks to flag (the badge in the menu); today's list and
// the queue also follow new and changed checks.
"use strict";
(function () {
  const nav = document.querySelector("header.top nav");
  if (!nav) return;
  const table = document.getElementById("verifications");
  const queue = document.getElementById("queue");
  const offline = document.getElementById("offline");
  const labelsNode = document.getElementById("labels");
  const labels = labelsNode ? JSON.parse(labelsNode.textContent) : null;
  const live = table ? table.dataset.live === "yes" : Boolean(queue);

  function showKiosks(info) {
    let badge = document.getElementById("kiosk-badge");
    const devices = info.devices || [];
    if (devices.length === 0) {
      if (badge) badge.remove();
    } else {
      if (!badge) {
        badge = document.createElement("a");
        badge.id = "kiosk-badge";
        badge.className = "badge";
        badge.href = "/kiosks";
        const link = nav.querySelector('a[href="/kiosks"]');
        if (link) link.after(badge); else nav.appendChild(badge);
      }
      badge.textContent = info.label + " ";
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = String(devices.length);
      badge.appendChild(count);
      badge.title = info.title + ": " + devices.join(", ");
      badge.dataset.devices = devices.join(" ");
    }
    const kiosks = document.getElementById("kiosks");
    if (!kiosks) return;
    for (const row of kiosks.tBodies[0].rows) {
      const flagged = devices.includes(row.id.replace(/^kiosk-/, ""));
      row.dataset.flagged = flagged ? "yes" : "no";
      row.classList.toggle("flagged", flagged);
    }
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function upsertRow(row) {
    if (row.day !== table.dataset.day) return;
    const tr = document.createElement("tr");
    tr.id = "v-" + row.id;
    tr.dataset.id = row.id;
    tr.className = "status-" + row.status + " fresh";
    tr.appendChild(cell(row.time));
    tr.appendChild(cell(row.device_id));
    tr.appendChild(cell(row.mode));
    tr.appendChild(cell(row.result, "result"));
    tr.appendChild(cell(row.status_label, "status"));
    const open = document.createElement("td");
    const a = document.createElement("a");
    a.href = "/verifications/" + encodeURIComponent(row.id);
    a.textContent = labels ? labels.open : "Open";
    open.appendChild(a);
    tr.appendChild(open);
    const old = document.getElementById(tr.id);
    const body = table.tBodies[0];
    if (old) {
      old.replaceWith(tr);
    } else {
      body.insertBefore(tr, body.firstChild);
    }
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = true;
  }

  async function refreshQueue() {
    const answer = await fetch("/queue", { credentials: "same-origin", cache: "no-store" });
    if (!answer.ok) return;
    const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = doc.getElementById("queue");
    const current = document.getElementById("queue");
    if (fresh && current) current.replaceWith(document.adoptNode(fresh));
  }

  const source = new EventSource("/events");
  source.addEventListener("kiosks", function (message) {
    showKiosks(JSON.parse(message.data));
  });
  source.addEventListener("verification", function (message) {
    if (!live) return;
    const row = JSON.parse(message.data);
    if (table) upsertRow(row);
    if (queue) refreshQueue();
  });
  source.addEventListener("logout", function () {
    source.close();
    window.location.assign("/login");
  });
  source.onopen = function () { if (offline) offline.hidden = true; };
  source.onerror = function () { if (offline) offline.hidden = false; };
})();
