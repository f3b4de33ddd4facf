() => {
  // Drag and drop onto the compose slots (run once on page load).
  // A tile dragged from any gallery is dropped as its picture's URL; Gradio's own upload area would read
  // that as an empty upload and clear the slot. So a drop on a slot that carries no file is taken here:
  // its URL goes to the hidden #drop-box, whose handler fills the slot on the server. Files dropped from
  // the desktop are left to Gradio's upload.
  // A dropped file that is not an image would make Gradio's upload area empty the box without a word: it
  // is stopped here and named to the server through the hidden #refused-drop, which answers in a sentence.
  const slotOf = (node) => (node && node.closest ? node.closest("#slot-a, #slot-b, #slot-c") : null);
  const boxOf = (node) => (node && node.closest ? node.closest("#slot-a, #slot-b, #slot-c, #query-image") : null);
  const send = (selector, text) => {
    const box = document.querySelector(`${selector} textarea, ${selector} input`);
    if (!box) return;
    box.value = `${text}|${Date.now()}`;
    box.dispatchEvent(new Event("input", { bubbles: true }));
  };
  document.addEventListener(
    "dragstart",
    (event) => {
      const img = event.target && event.target.closest ? event.target.closest("img") : null;
      if (img && img.src) event.dataTransfer.setData("application/x-hashdemo-tile", img.src);
    },
    true,
  );
  document.addEventListener(
    "dragover",
    (event) => {
      if (boxOf(event.target)) event.preventDefault();
    },
    true,
  );
  document.addEventListener(
    "drop",
    (event) => {
      const target = boxOf(event.target);
      const files = [...((event.dataTransfer && event.dataTransfer.files) || [])];
      if (target && files.length && !files.some((file) => file.type.startsWith("image/"))) {
        event.preventDefault();
        event.stopPropagation();
        const where = target.id === "query-image" ? "the query box" : `slot ${target.id.slice(-1).toUpperCase()}`;
        send("#refused-drop", `${where}|${files[0].name}`);
        return;
      }
      const slot = slotOf(event.target);
      const transfer = event.dataTransfer;
      if (!slot || files.length) return;
      event.preventDefault();
      event.stopPropagation();
      const url = (transfer.getData("application/x-hashdemo-tile") || transfer.getData("text/uri-list") || "")
        .split("\n")[0]
        .trim();
      if (url) send("#drop-box", `${slot.id.slice(-1).toUpperCase()}|${url}`);
    },
    true,
  );
}
