// "Reveal" buttons: fetch a secret the server shows to site admins only, and put it in place of its masked form.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-reveal-url]");
  if (!button) return;
  const response = await fetch(button.dataset.revealUrl, { credentials: "same-origin" });
  const data = await response.json();
  button.previousElementSibling.textContent = data.token ?? data.error;
  button.remove();
});
