// PayRoster: progressive enhancements only; every page works without this file.
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  // Narrow screens: the navigation folds behind the "Menu" button.
  const menu = document.querySelector(".menu-button");
  const nav = document.getElementById("nav");
  if (menu && nav) {
    menu.addEventListener("click", () => {
      const open = nav.classList.toggle("open");
      menu.setAttribute("aria-expanded", String(open));
    });
  }

  // Copy buttons: data-copy names the input whose value is copied.
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (e) {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  });

  // Custom-variable timelines: bars are placed from their data attributes (no inline styles under the CSP).
  document.querySelectorAll(".timeline .bar").forEach((bar) => {
    bar.style.left = bar.dataset.left + "%";
    bar.style.width = bar.dataset.width + "%";
  });

  // Pickers: a field with data-pick offers, in its <datalist>, the matches /pick/<kind>?q= finds on the server as
  // one types (a few at a time, from the signed-in workspace); without this file it is a plain input. Several kinds
  // ("people teams") offer the matches of each, in that order.
  document.querySelectorAll("input[data-pick]").forEach((input) => {
    const list = input.list;
    if (!list) return;
    let timer = null;
    let asked = "";
    input.addEventListener("input", () => {
      clearTimeout(timer);
      const text = input.value.trim();
      if (!text || text === asked) return;
      timer = setTimeout(async () => {
        asked = text;
        try {
          const options = [];
          for (const kind of input.dataset.pick.split(" ")) {
            const url = "/pick/" + encodeURIComponent(kind) + "?q=" + encodeURIComponent(text);
            const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
            if (!answer.ok) return;
            options.push(...(await answer.json()));
          }
          if (input.value.trim() !== text) return;  // typed on meanwhile: a later answer fills the list
          list.replaceChildren(...options.map((found) => {
            const option = document.createElement("option");
            option.value = found.value;
            if (found.label !== found.value) option.label = found.label;
            return option;
          }));
          list.dataset.for = text;
        } catch (e) {
          // Offline or signed out: the field stays a plain input.
        }
      }, 150);
    });
  });

  // Bulk apply: show upload progress, then wait for the one transaction to finish.
  const apply = document.getElementById("apply-form");
  if (apply) {
    apply.addEventListener("submit", (event) => {
      event.preventDefault();
      const button = document.getElementById("apply");
      const bar = document.getElementById("apply-progress");
      const status = document.getElementById("apply-status");
      button.disabled = true;
      bar.hidden = false;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", apply.action);
      xhr.setRequestHeader("X-PayRoster-Progress", "1");
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) {
          bar.value = Math.round((e.loaded / e.total) * 90);
          status.textContent = "Uploading… " + bar.value + "%";
        }
      });
      xhr.upload.addEventListener("load", () => {
        bar.removeAttribute("value");
        status.textContent = "Applying every row in one transaction…";
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 200) {
          const answer = JSON.parse(xhr.responseText);
          bar.value = 100;
          status.textContent = "Done.";
          window.location.assign(answer.location);
        } else {
          apply.submit();  // the server answers with the preview and its errors
        }
      });
      xhr.addEventListener("error", () => {
        status.textContent = "The upload failed: check the connection and try again.";
        button.disabled = false;
      });
      xhr.send(new FormData(apply));
    });
  }
});
