// The page on the device: polls the JSON endpoints (README "The page on the device") and draws.
// No framework, no CDN: the device may have no internet.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { liveFps: 5, scores: [], last: 0, threshold: NaN, offset: 0, pageSize: 10, calib: null, alertsKey: "" };
const TRACE_KEPT = 600;

$("token").value = localStorage.getItem("edgeToken") || "";
$("token").addEventListener("change", () => localStorage.setItem("edgeToken", $("token").value.trim()));

function headers(json) {
  const h = {};
  const token = $("token").value.trim();
  if (token) h["Authorization"] = "Bearer " + token;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

function say(text, ok) {
  $("message").textContent = text;
  $("message").className = ok ? "ok" : "";
}

async function api(path, options) {
  const response = await fetch(path, { cache: "no-store", ...options, headers: headers(options && options.body) });
  if (!response.ok) {
    let why = response.statusText;
    try { why = (await response.json()).error || why; } catch (e) { /* not JSON */ }
    const err = new Error(`${response.status}: ${why}`);
    err.status = response.status;
    throw err;
  }
  return response;
}

// -- live view: one JPEG at a time, at most liveFps a second -----------------------------------
async function live() {
  try {
    const response = await api("/api/live.jpg");
    const seq = response.headers.get("X-Frame-Seq");
    if (seq !== $("live").dataset.seq) {
      const url = URL.createObjectURL(await response.blob());
      const old = $("live").src;
      $("live").src = url;
      $("live").dataset.seq = seq;
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    }
  } catch (e) {
    if (e.status !== 503) say(`live view: ${e.message}`);
  }
  setTimeout(live, 1000 / state.liveFps);
}

// -- score trace -------------------------------------------------------------------------------
async function scores() {
  try {
    const data = await (await api(`/api/scores?after=${state.last}`)).json();
    state.threshold = data.threshold;
    state.last = data.last;
    state.scores.push(...data.scores);
    if (state.scores.length > TRACE_KEPT) state.scores.splice(0, state.scores.length - TRACE_KEPT);
    drawTrace();
  } catch (e) { say(`scores: ${e.message}`); }
  setTimeout(scores, 500);
}

function drawTrace() {
  const canvas = $("trace"), g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pts = state.scores.filter((s) => s[2] !== null);
  g.clearRect(0, 0, w, h);
  if (!pts.length) return;
  const values = pts.map((s) => s[2]).concat([state.threshold]);
  let lo = Math.min(...values), hi = Math.max(...values);
  const pad = (hi - lo) * 0.1 || 1; lo -= pad; hi += pad;
  const x = (i) => (i / Math.max(TRACE_KEPT - 1, 1)) * w;
  const y = (v) => h - ((v - lo) / (hi - lo)) * h;
  g.strokeStyle = "#1565c0"; g.lineWidth = 1.5; g.beginPath();
  pts.forEach((s, i) => (i ? g.lineTo(x(i), y(s[2])) : g.moveTo(x(i), y(s[2]))));
  g.stroke();
  g.fillStyle = "#c62828";
  pts.forEach((s, i) => { if (s[3]) { g.beginPath(); g.arc(x(i), y(s[2]), 3, 0, 7); g.fill(); } });
  g.strokeStyle = "#c62828"; g.setLineDash([6, 4]); g.beginPath();
  g.moveTo(0, y(state.threshold)); g.lineTo(w, y(state.threshold)); g.stroke(); g.setLineDash([]);
  g.fillStyle = "#555"; g.font = "11px sans-serif";
  g.fillText(hi.toPrecision(4), 2, 11); g.fillText(lo.toPrecision(4), 2, h - 3);
  $("trace-now").textContent = `· last ${pts[pts.length - 1][2].toPrecision(4)}, threshold ${state.threshold.toPrecision(4)}`;
}

// -- status ------------------------------------------------------------------------------------
async function status() {
  try {
    const s = await (await api("/api/status")).json();
    state.liveFps = s.live_fps || state.liveFps;
    const b = s.bundle, backlog = Object.entries(s.backlog).map(([k, v]) => `${k} ${v}`).join(", ");
    $("status").textContent =
      `${s.source} · ${s.fps.toFixed(1)} fps · frames ${s.frames} · dropped ${s.dropped} · reopens ${s.reopens} · ` +
      `alerts ${s.alerts} · sink errors ${s.sink_errors} · backlog ${backlog || "none"} · ` +
      `disk free ${s.disk.free_mb !== undefined ? s.disk.free_mb.toFixed(0) + " MB" : s.disk.error} · ` +
      `bundle ${b.path.split("/").pop()} ${b.sha256} (${b.kind}, ${b.age_days} days old)` +
      (s.health ? ` · picture ${s.health.image} · scores ${s.health.drift}` : "");
    const last = s.swap && s.swap.last;
    $("bundle-info").textContent = `running ${b.id} v${b.version} (${b.path})` + (last ?
      ` · last swap ${last.state} at ${last.time}: ${last.old.id} v${last.old.version} → ` +
      `${last.new.id || last.new.path} v${last.new.version ?? "?"}${last.reason ? ` (${last.reason})` : ""}` : "");
  } catch (e) { $("status").textContent = `status: ${e.message}`; }
  setTimeout(status, 1000);
}

// -- sensitivity: rates on the calibration scores, computed here as the slider moves -------------
function shareOver(sorted, t) { return sorted.length ? sorted.filter((s) => s > t).length / sorted.length : null; }

// 95 % Wilson interval of a rate p measured on n images (edge/binomial.py wilson; the same numbers)
function wilson(p, n) {
  const z = 1.959964, d = 1 + z * z / n, centre = (p + z * z / (2 * n)) / d;
  const half = z * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

function showRates(t) {
  const c = state.calib;
  if (!c) return;
  const far = shareOver(c.normal, t), recall = shareOver(c.anomalous, t);
  const [lo, hi] = wilson(far, c.normal_count);
  $("threshold-rates").textContent =
    `at ${t.toPrecision(5)}: false alarms ${(100 * far).toFixed(1)} % of ${c.normal_count} good images ` +
    `(95 % interval ${(100 * lo).toFixed(1)}–${(100 * hi).toFixed(1)} %)` +
    (recall === null ? " (no anomalous images in calibration)" : `, recall ${(100 * recall).toFixed(1)} % of ${c.anomalous_count} defects`) +
    (c.exact ? "" : " (approximate: from the bundle's quantiles)");
}

async function loadThreshold() {
  try {
    const s = await (await api("/api/threshold")).json();
    state.calib = s.scores;
    const slider = $("threshold-slider");
    if (s.scores) {
      const [lo, hi] = s.scores.range;
      slider.min = lo; slider.max = hi; slider.step = (hi - lo) / 1000;
    } else {
      slider.disabled = true; $("threshold-apply").disabled = true;
    }
    slider.value = s.threshold; $("threshold-value").value = s.threshold;
    showRates(s.threshold);
    const last = s.override && s.override.last;
    $("threshold-info").textContent = `calibrated ${s.calibrated.value.toPrecision(5)} (${s.calibrated.method})` +
      (last ? `; override by ${last.who} at ${last.time}: ${Number(last.old).toPrecision(5)} → ${Number(last.new).toPrecision(5)}` : "") +
      (s.scores ? `; range ${s.scores.range.map((v) => v.toPrecision(5)).join(" – ")} (${s.scores.source})` : "; this bundle keeps no calibration scores");
  } catch (e) { say(`threshold: ${e.message}`); }
}

$("threshold-slider").addEventListener("input", (ev) => {
  $("threshold-value").value = ev.target.value;
  showRates(Number(ev.target.value));
});
$("threshold-value").addEventListener("input", (ev) => showRates(Number(ev.target.value)));
$("bundle-swap").addEventListener("click", async () => {
  try {
    await api("/api/bundle/swap", { method: "POST", body: "{}" });
    say("bundle swap requested: it is checked before it replaces the running one (outcome under Bundle)", true);
  } catch (e) { say(`bundle not swapped: ${e.message}`); }
});

$("threshold-apply").addEventListener("click", async () => {
  const value = Number($("threshold-value").value);
  try {
    await api("/api/threshold", { method: "POST", body: JSON.stringify({ threshold: value }) });
    say(`threshold ${value} applied and recorded beside the bundle`, true);
  } catch (e) { say(`threshold not changed: ${e.message}`); }
  loadThreshold();
});

// -- alerts and their review -------------------------------------------------------------------
async function picture(img, url) {
  try { img.src = URL.createObjectURL(await (await api(url)).blob()); } catch (e) { img.alt = `no snapshot (${e.message})`; }
}

function alertItem(a) {
  const li = document.createElement("li");
  li.className = "alert"; li.dataset.id = a.id;
  const img = document.createElement("img");
  img.className = "snapshot"; img.alt = `alert ${a.id.slice(0, 8)}`;
  const link = a.links.annotated || a.links.raw;
  if (link) picture(img, link); else img.alt = "no snapshot";
  const text = document.createElement("div");
  const when = new Date(a.time).toLocaleTimeString();
  text.innerHTML = `<div>${when} · frame ${a.frame_index} · <b></b></div><div class="small"></div>` +
    `<div class="verdict"></div><div class="actions"><button class="false-alarm">false alarm</button> ` +
    `<button class="real-defect">real defect</button> <input class="defect-name" placeholder="defect name"></div>`;
  text.querySelector("b").textContent = `${a.label} ${a.score.toPrecision(4)} > ${a.threshold.toPrecision(4)}`;
  text.querySelector(".small").textContent = a.source;
  const verdict = text.querySelector(".verdict");
  if (a.verdict) {
    verdict.textContent = a.verdict === "false_alarm" ? "false alarm" : `real defect: ${a.defect}`;
    verdict.classList.add(a.verdict);
  }
  text.querySelector(".false-alarm").onclick = () => review(a.id, "false_alarm", null);
  text.querySelector(".real-defect").onclick = () => review(a.id, "real_defect", text.querySelector(".defect-name").value);
  li.append(img, text);
  return li;
}

async function review(id, verdict, defect) {
  try {
    const r = await (await api(`/api/alerts/${id}/review`, { method: "POST", body: JSON.stringify({ verdict, defect }) })).json();
    say(`alert ${id.slice(0, 8)}: ${verdict.replace("_", " ")} stored` + (r.copied ? `, frame copied to ${r.copied}` : ", no frame to copy"), true);
    state.alertsKey = "";
    alerts(false);
  } catch (e) { say(`review not stored: ${e.message}`); }
}

async function alerts(again = true) {
  try {
    const data = await (await api(`/api/alerts?limit=${state.pageSize}&offset=${state.offset}`)).json();
    const key = JSON.stringify(data.alerts.map((a) => [a.id, a.verdict, a.defect]));
    $("alerts-count").textContent = `${data.offset + 1}–${data.offset + data.alerts.length} of ${data.total}`;
    if (key !== state.alertsKey) {
      state.alertsKey = key;
      $("alerts").replaceChildren(...data.alerts.map(alertItem));
    }
  } catch (e) { say(`alerts: ${e.message}`); }
  if (again) setTimeout(alerts, 2000);
}
$("older").onclick = () => { state.offset += state.pageSize; state.alertsKey = ""; alerts(false); };
$("newer").onclick = () => { state.offset = Math.max(0, state.offset - state.pageSize); state.alertsKey = ""; alerts(false); };

status(); live(); scores(); alerts(); loadThreshold();
