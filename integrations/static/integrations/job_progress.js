// Progress of long work (imports, pushes, pulls): each .job-progress element asks its job run how far it has got
// every two seconds and updates its bar and words, until the run has ended.
const POLL_MS = 2000;

function describe(state) {
  const parts = [state.outcome];
  if (state.percent !== null) parts.push(`${state.percent}%`);
  if (state.counts) parts.push(state.counts);
  if (state.eta_seconds !== null) parts.push(`about ${Math.max(1, Math.round(state.eta_seconds / 60))} min left`);
  return parts.join(" · ");
}

async function follow(element) {
  const response = await fetch(element.dataset.progressUrl, { credentials: "same-origin" });
  if (!response.ok) return;
  const state = await response.json();
  const bar = element.querySelector("progress");
  if (state.percent !== null) bar.value = state.percent;
  element.querySelector(".job-progress-text").textContent = describe(state);
  element.dataset.outcome = state.outcome;
  if (!state.finished) setTimeout(() => follow(element), POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".job-progress[data-progress-url]").forEach((element) => {
    if (element.dataset.outcome === "running") setTimeout(() => follow(element), POLL_MS);
  });
});
