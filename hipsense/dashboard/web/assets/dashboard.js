// Live updates for the dashboard pages (served from this origin only; see the CSP).
// Patient page: the live panel and today's results update over SSE without a reload.
// Patients list: an SSE cue re-fetches the table. Prescription editor: "add row".
"use strict";

function text(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = value;
}

function startPatientPage(root) {
  const patient = root.dataset.patient;
  const source = new EventSource(`/patients/${patient}/stream?after=${root.dataset.lastRow}`);
  source.addEventListener("live", (event) => {
    const live = JSON.parse(event.data);
    text("live-exercise", live.exercise ? live.exercise_name : "between exercises");
    text("live-side", live.side);
    text("live-reps", live.rep_count ?? "–");
    text("live-angle", `${Math.round(live.thigh_angle_deg)}°`);
    text("live-hold", live.hold_remaining_s != null ? `${live.hold_remaining_s.toFixed(1)} s` : "–");
    // 24-hour, in the clinic's zone: like every time the server writes on the page
    text("live-updated", new Date(live.t).toLocaleTimeString("en-GB", {
      hour12: false, timeZone: document.body.dataset.zone || undefined }));
    const bar = document.getElementById("live-gauge");
    if (bar) {  // -90..+90 degrees around the middle of the gauge
      const angle = Math.max(-90, Math.min(90, live.thigh_angle_deg));
      bar.style.left = angle >= 0 ? "50%" : `${50 + angle / 1.8}%`;
      bar.style.width = `${Math.abs(angle) / 1.8}%`;
    }
    root.classList.add("is-live");
  });
  source.addEventListener("result", (event) => {
    const result = JSON.parse(event.data);
    const list = document.getElementById("today-results");
    const item = document.createElement("li");
    item.className = `fresh kind-${result.kind}`;
    item.dataset.seq = result.seq;
    item.dataset.t = result.t;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = result.time;
    item.append(time, document.createTextNode(result.text));
    // Keep event order (newest first) even when results arrive out of order.
    const after = [...list.children].find((li) => li.dataset.t < result.t ||
        (li.dataset.t === result.t && Number(li.dataset.seq) < result.seq));
    list.insertBefore(item, after ?? null);
    document.getElementById("no-results")?.remove();
  });
  source.addEventListener("status", (event) => {
    text("device-state", JSON.parse(event.data).state);
  });
}

function startPatientsPage(root) {
  const source = new EventSource("/patients/stream");
  source.addEventListener("changed", async () => {
    const response = await fetch("/patients/table", { headers: { Accept: "text/html" } });
    if (response.ok) root.innerHTML = await response.text();
  });
}

function startEditor(form) {
  document.getElementById("add-row")?.addEventListener("click", () => {
    const body = form.querySelector("tbody");
    const last = body.lastElementChild;
    const index = body.children.length;
    const copy = last.cloneNode(true);
    for (const field of copy.querySelectorAll("[name]")) {
      field.name = field.name.replace(/^rows-\d+-/, `rows-${index}-`);
      if (field.tagName === "INPUT") field.value = "";
      if (field.name.endsWith("-exercise")) field.value = "";
      if (field.name.endsWith("-order")) field.value = String(index + 1);
    }
    body.append(copy);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const patientPage = document.querySelector("[data-live-patient]");
  if (patientPage) startPatientPage(patientPage);
  const table = document.getElementById("patients-table");
  if (table) startPatientsPage(table);
  const editor = document.getElementById("prescription-form");
  if (editor) startEditor(editor);
});
