// Live updates: every element with data-poll-url is refreshed from that URL (an HTML fragment)
// every few seconds until the fragment reports data-live="false" (every job finished).
// Lists marked data-poll-always keep polling, so new jobs and devices appear without a reload.
"use strict";

const POLL_INTERVAL_MS = 2000;

async function refresh(container) {
  let response;
  try {
    response = await fetch(container.dataset.pollUrl, { credentials: "same-origin", headers: { Accept: "text/html" } });
  } catch (error) {
    console.warn("dashboard refresh failed, retrying:", error);
    return true;
  }
  if (response.redirected && response.url.includes("/login")) {
    window.location.href = response.url;
    return false;
  }
  if (!response.ok) {
    console.warn("dashboard refresh failed with HTTP", response.status);
    return true;
  }
  container.innerHTML = await response.text();
  const state = container.querySelector(".live-state");
  const live = container.dataset.pollAlways === "true" || state === null || state.dataset.live !== "false";
  if (!live && container.dataset.reloadWhenDone === "true") {
    // Parts outside the fragment (links to the published model) change when a job ends.
    window.location.reload();
  }
  return live;
}

function startPolling(container) {
  const state = container.querySelector(".live-state");
  if (container.dataset.pollAlways !== "true" && state !== null && state.dataset.live === "false") {
    return;
  }
  const timer = window.setInterval(async () => {
    const keepGoing = await refresh(container);
    if (!keepGoing) {
      window.clearInterval(timer);
    }
  }, POLL_INTERVAL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-poll-url]").forEach(startPolling);
});
