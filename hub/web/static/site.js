// fnhub web catalog: small progressive enhancements. Every page works without this file.
"use strict";

(() => {
  const announcer = document.getElementById("announcer");
  const announce = (message) => {
    if (announcer) announcer.textContent = message;
  };

  // Copy buttons: shown only when scripts run; they copy the snippet they point at.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(source.textContent);
      } catch {
        const selection = window.getSelection();
        const range = document.createRange();
        range.selectNodeContents(source);
        selection.removeAllRanges();
        selection.addRange(range);
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      announce("Copied to the clipboard");
      window.setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }

  // The version picker opens the chosen version's page at once.
  for (const select of document.querySelectorAll("select[data-navigate]")) {
    select.addEventListener("change", () => {
      window.location.href = `${select.form.action}/${encodeURIComponent(select.value)}`;
    });
  }

  // Search as you type: the results section is fetched again and swapped in place.
  const form = document.querySelector("form[data-live-search]");
  if (!form) return;
  let timer = 0;
  let pending = null;
  const refresh = async () => {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (value && !(key === "sort" && value === "relevance")) params.append(key, value);
    }
    const url = params.toString() ? `/?${params}` : "/";
    if (pending) pending.abort();
    pending = new AbortController();
    let response;
    try {
      response = await fetch(url, { signal: pending.signal, headers: { Accept: "text/html" } });
    } catch (error) {
      if (error.name === "AbortError") return;
      throw error;
    }
    if (!response.ok) {
      form.submit();  // let the server's page explain the problem
      return;
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("results");
    const current = document.getElementById("results");
    if (!fresh || !current) return;
    current.replaceWith(fresh);
    window.history.replaceState(null, "", url);
    document.title = page.title;
    announce(fresh.dataset.summary || "");
  };
  const soon = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 250);
  };
  form.querySelector("input[name=q]").addEventListener("input", soon);
  for (const select of form.querySelectorAll("select")) select.addEventListener("change", refresh);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.clearTimeout(timer);
    refresh();
  });
})();
