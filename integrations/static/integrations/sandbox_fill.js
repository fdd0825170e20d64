// "Fill with the sandbox's credentials": copy the simulator's values (data-sandbox-fill, JSON of field name -> value)
// into the form's inputs. The box shows only while the form's environment is "sandbox" (or has no environment input).
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-sandbox-environment]");
  if (!box) return;
  const form = box.closest("form") ?? document.querySelector("#content-main form");
  const environment = form?.querySelector("select[name=environment]");
  const showForEnvironment = () => {
    box.hidden = Boolean(environment) && environment.value !== "sandbox";
  };
  environment?.addEventListener("change", showForEnvironment);
  showForEnvironment();
  box.querySelector("button[data-sandbox-fill]").addEventListener("click", (event) => {
    const values = JSON.parse(event.currentTarget.dataset.sandboxFill);
    for (const [name, value] of Object.entries(values)) {
      const input = form?.elements.namedItem(name);
      if (input) input.value = value;
    }
  });
});
