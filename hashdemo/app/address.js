() => {
  // The page's address is the link to its view. The handlers write each tab's link (a query string) to a
  // hidden box; its change calls hashdemoAddress, a tab's selection hashdemoTab. The first answers only
  // settle the address the page was opened with; after the user's first action every new view is a
  // history entry, and Back reloads the page at the previous address, which restores that view.
  const TABS = ["search", "compose", "benchmarks", "how"];
  const opened = new URLSearchParams(location.search);
  const named = opened.get("tab");
  let tab = TABS.includes(named) ? named : ["a", "b", "op"].some((key) => opened.has(key)) ? "compose" : "search";
  const views = { search: "", compose: "" };
  let acted = false;
  for (const kind of ["pointerdown", "keydown"]) document.addEventListener(kind, () => { acted = true; }, true);
  const place = () => {
    const wanted = views[tab] || (tab === "search" ? "" : `?tab=${tab}`);
    if (wanted === location.search) return;
    const url = location.pathname + wanted;
    if (acted) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  };
  window.hashdemoAddress = (kind, query) => {
    views[kind] = query || "";
    if (kind === tab) place();
    return query ? location.origin + location.pathname + query : "";
  };
  window.hashdemoTab = (name) => {
    tab = name;
    place();
  };
  window.addEventListener("popstate", () => location.reload());
}
