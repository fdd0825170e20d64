// The connection add form: choosing the vendor reloads the page with that vendor's secret and setting fields.
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-reload-with]")) {
    select.addEventListener("change", () => {
      window.location.search = `?${select.dataset.reloadWith}=${encodeURIComponent(select.value)}`;
    });
  }
});
