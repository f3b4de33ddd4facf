() => {
  // Drag and drop onto the compose slots (run once on page load).
  // A tile dragged from any gallery is dropped as its picture's URL; Gradio's own upload area would read
  // that as an empty upload and clear the slot. So a drop on a slot that carries no file is taken here:
  // its URL goes to the hidden #drop-box, whose handler fills the slot on the server. Files dropped from
  // the desktop are left to Gradio's upload.
  const slotOf = (node) => (node && node.closest ? node.closest("#slot-a, #slot-b, #slot-c") : null);
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
      if (slotOf(event.target)) event.preventDefault();
    },
    true,
  );
  document.addEventListener(
    "drop",
    (event) => {
      const slot = slotOf(event.target);
      const transfer = event.dataTransfer;
      if (!slot || (transfer.files && transfer.files.length)) return;
      event.preventDefault();
      event.stopPropagation();
      const url = (transfer.getData("application/x-hashdemo-tile") || transfer.getData("text/uri-list") || "")
        .split("\n")[0]
        .trim();
      const box = document.querySelector("#drop-box textarea, #drop-box input");
      if (!url || !box) return;
      box.value = `${slot.id.slice(-1).toUpperCase()}|${url}|${Date.now()}`;
      box.dispatchEvent(new Event("input", { bubbles: true }));
    },
    true,
  );
}
