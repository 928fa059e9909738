// Filters of the predictions table. State lives in the URL hash
// (#domain=D&method=M&verdict=right|wrong&q=TEXT&disagree=1), so a filtered view can be
// bookmarked or opened directly. Reads only the page itself; loads nothing.
(function () {
  "use strict";
  const rows = Array.from(document.querySelectorAll("tr.pred"));
  const texts = rows.map((row) => row.textContent.toLowerCase());
  const controls = {
    domain: document.getElementById("f-domain"),
    method: document.getElementById("f-method"),
    verdict: document.getElementById("f-verdict"),
    q: document.getElementById("f-search"),
    disagree: document.getElementById("f-disagree"),
  };

  function current() {
    return {
      domain: controls.domain.value,
      method: controls.method.value,
      verdict: controls.verdict.value,
      q: controls.q.value.trim().toLowerCase(),
      disagree: controls.disagree.checked,
    };
  }

  function matches(row, text, s) {
    return (
      (!s.domain || row.dataset.domain === s.domain) &&
      (!s.method || row.dataset.method === s.method) &&
      (!s.verdict || row.dataset.verdict === s.verdict) &&
      (!s.disagree || row.dataset.disagree === "1") &&
      (!s.q || text.includes(s.q))
    );
  }

  function apply() {
    const s = current();
    let shown = 0;
    rows.forEach((row, i) => {
      const visible = matches(row, texts[i], s);
      row.hidden = !visible;
      if (visible) shown += 1;
    });
    document.getElementById("shown").textContent = String(shown);
    document.getElementById("none").hidden = shown > 0;
    const params = new URLSearchParams();
    for (const key of ["domain", "method", "verdict"]) if (s[key]) params.set(key, s[key]);
    if (controls.q.value.trim()) params.set("q", controls.q.value.trim());
    if (s.disagree) params.set("disagree", "1");
    try {
      history.replaceState(null, "", "#" + params.toString());
    } catch (e) {
      // some browsers refuse replaceState on file:// pages; the filters still work
    }
  }

  function choose(select, value) {
    if (Array.from(select.options).some((option) => option.value === value)) select.value = value;
  }

  function load() {
    const params = new URLSearchParams(location.hash.slice(1));
    choose(controls.domain, params.get("domain") || "");
    choose(controls.method, params.get("method") || "");
    choose(controls.verdict, params.get("verdict") || "");
    controls.q.value = params.get("q") || "";
    controls.disagree.checked = params.get("disagree") === "1";
  }

  for (const control of Object.values(controls)) {
    control.addEventListener("input", apply);
    control.addEventListener("change", apply);
  }
  window.addEventListener("hashchange", () => {
    load();
    apply();
  });
  load();
  apply();
})();
