// Live updates for the staff dashboard: server-sent events only, no polling loop.
// Every signed-in page follows the kiosks to flag (the badge in the menu) and how many items
// wait for staff (the queue badge, the page title, and a chime when staff turned sound on -
// a setting kept in this browser); today's list and the queue also follow new and changed
// checks and staff calls.
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
  const CHIME_KEY = "onshi-chime";
  const chimeToggle = document.getElementById("chime-toggle");
  const titleNode = document.querySelector("title");
  const firstBadge = document.getElementById("queue-badge");
  let waitingNow = firstBadge ? Number(firstBadge.dataset.count || "0") : null;

  function chimeOn() {
    try { return window.localStorage.getItem(CHIME_KEY) === "on"; } catch (e) { return false; }
  }

  function showChimeSetting() {
    if (!chimeToggle) return;
    const on = chimeOn();
    chimeToggle.setAttribute("aria-pressed", on ? "true" : "false");
    chimeToggle.textContent = on ? chimeToggle.dataset.on : chimeToggle.dataset.off;
  }

  let audio = null;
  function chime() {
    // two soft tones; counted on the page so staff (and tests) can see it played
    const root = document.documentElement;
    root.dataset.chimes = String(Number(root.dataset.chimes || "0") + 1);
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!audio) audio = new Context();
    const start = audio.currentTime;
    [880, 660].forEach(function (frequency, i) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + i * 0.25);
      gain.gain.exponentialRampToValueAtTime(0.2, start + i * 0.25 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.25 + 0.22);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + i * 0.25);
      tone.stop(start + i * 0.25 + 0.24);
    });
  }

  if (chimeToggle) {
    showChimeSetting();
    chimeToggle.addEventListener("click", function () {
      try { window.localStorage.setItem(CHIME_KEY, chimeOn() ? "off" : "on"); } catch (e) { /* private mode */ }
      showChimeSetting();
      if (chimeOn() && !audio && (window.AudioContext || window.webkitAudioContext)) {
        audio = new (window.AudioContext || window.webkitAudioContext)();  // allowed: a click
      }
    });
  }

  function showWaiting(count) {
    const badge = document.getElementById("queue-badge");
    if (badge) {
      badge.hidden = count === 0;
      badge.dataset.count = String(count);
      badge.querySelector(".count").textContent = String(count);
    }
    if (titleNode) {
      const base = titleNode.dataset.base || document.title;
      const prefix = (titleNode.dataset.waiting || "({n})").replace("{n}", String(count));
      document.title = count > 0 ? prefix + " " + base : base;
    }
    if (waitingNow !== null && count > waitingNow && chimeOn()) chime();
    waitingNow = count;
  }

  const printButton = document.getElementById("print");
  if (printButton) printButton.addEventListener("click", function () { window.print(); });

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

  let refreshes = 0;
  async function refreshQueue() {
    const mine = ++refreshes;  // only the latest fetch may replace the queue
    const answer = await fetch("/queue", { credentials: "same-origin", cache: "no-store" });
    if (!answer.ok) return;
    const text = await answer.text();
    if (mine !== refreshes) return;
    const doc = new DOMParser().parseFromString(text, "text/html");
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
  source.addEventListener("queue", function (message) {
    // sent after every change of a check or a call: the count may stay the same while an
    // item changes (a call joining its visual check), so the queue is fetched again anyway
    const info = JSON.parse(message.data);
    showWaiting(info.count);
    if (queue) refreshQueue();
  });
  source.addEventListener("logout", function () {
    source.close();
    window.location.assign("/login");
  });
  source.onopen = function () { if (offline) offline.hidden = true; };
  source.onerror = function () { if (offline) offline.hidden = false; };
})();
