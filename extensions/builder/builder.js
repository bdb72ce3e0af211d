// Hybrid Quantum Workbench: drag-and-drop network builder.
//
// Plain ESM for panel.custom.JSComponent (no npm, no build, no CDN). The component only draws what
// Python sends (palette, blocks with shapes and errors) and reports what the user did through
// model.send_msg({action, ...}); every edit, its validation and the undo history live in Python.

const PALETTE_MIME = "application/x-wb-palette";
const READOUT_MIME = "application/x-wb-palette-readout";
const MOVE_MIME = "application/x-wb-move";

// Inline SVG icons (no icon font, nothing fetched).
const ICONS = {
  up: '<path d="M12 5v14"/><path d="M6 11l6 -6l6 6"/>',
  down: '<path d="M12 5v14"/><path d="M6 13l6 6l6 -6"/>',
  duplicate: '<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8v-2a2 2 0 0 0 -2 -2h-8a2 2 0 0 0 -2 2v8a2 2 0 0 0 2 2h2"/>',
  delete: '<path d="M4 7h16"/><path d="M10 11v6"/><path d="M14 11v6"/><path d="M5 7l1 12a2 2 0 0 0 2 2h8a2 2 0 0 0 2 -2l1 -12"/><path d="M9 7v-3h6v3"/>',
  grip: '<circle cx="9" cy="6" r="1.2"/><circle cx="9" cy="12" r="1.2"/><circle cx="9" cy="18" r="1.2"/><circle cx="15" cy="6" r="1.2"/><circle cx="15" cy="12" r="1.2"/><circle cx="15" cy="18" r="1.2"/>',
  plus: '<path d="M12 5v14"/><path d="M5 12h14"/>',
};

function icon(name, size = 15) {
  const span = document.createElement("span");
  span.className = "wb-icon";
  span.innerHTML = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 24 24" ` +
    `fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name]}</svg>`;
  return span;
}

const GROUP_TITLES = {
  classical: "Classical layers",
  quantum: "Quantum layers",
  readout: "Readouts (quantum output)",
};

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

export function render({ model, el }) {
  const root = h("div", { class: "wb-builder", tabindex: "0" });
  const palette = h("div", { class: "wb-palette", "aria-label": "Block palette" });
  const canvas = h("div", { class: "wb-canvas", "aria-label": "Network canvas" });
  const status = h("div", { class: "wb-status", role: "status" });
  const right = h("div", { class: "wb-right" }, status, canvas);
  root.append(palette, right);

  const send = (msg) => model.send_msg(msg);
  let dragKind = null; // "palette" | "readout" | "move"

  // ---------------------------------------------------------------- palette
  function renderPalette() {
    palette.replaceChildren();
    palette.append(h("div", { class: "wb-palette-title" }, "Palette"),
      h("div", { class: "wb-palette-hint" }, "Drag onto the canvas, or press + to append"));
    const groups = {};
    for (const item of model.palette || []) (groups[item.group] ||= []).push(item);
    for (const [group, items] of Object.entries(groups)) {
      const section = h("div", { class: `wb-palette-group wb-group-${group}` },
        h("div", { class: "wb-palette-group-title" }, GROUP_TITLES[group] || group));
      for (const item of items) {
        const entry = h("div", {
          class: `wb-palette-item wb-kind-${group}`, draggable: "true", title: item.hint,
          dataset: { key: item.key, group },
          ondragstart: (e) => {
            dragKind = group === "readout" ? "readout" : "palette";
            e.dataTransfer.setData(group === "readout" ? READOUT_MIME : PALETTE_MIME, item.key);
            e.dataTransfer.setData("text/plain", item.key);
            e.dataTransfer.effectAllowed = "copy";
            root.classList.add("wb-dragging");
          },
          ondragend: () => endDrag(),
        },
          h("span", { class: "wb-palette-dot" }),
          h("span", { class: "wb-palette-label" }, item.label),
          h("button", {
            class: "wb-palette-add", title: `Append “${item.label}” to the network`, "aria-label": `Append ${item.label}`,
            onclick: (e) => { e.stopPropagation(); send({ action: "add", key: item.key }); },
          }, icon("plus", 14)));
        section.append(entry);
      }
      palette.append(section);
    }
  }

  // ---------------------------------------------------------------- canvas
  function cards() {
    return Array.from(canvas.querySelectorAll(".wb-block"));
  }

  function insertionIndex(clientY) {
    let index = 0;
    for (const card of cards()) {
      const box = card.getBoundingClientRect();
      if (clientY > box.top + box.height / 2) index = Number(card.dataset.index) + 1;
    }
    return index;
  }

  function readoutTarget(e) {
    // A readout dropped on the middle of a quantum block replaces that block's readout.
    const card = e.target.closest ? e.target.closest(".wb-block") : null;
    if (!card || card.dataset.type !== "quantum") return null;
    const box = card.getBoundingClientRect();
    const y = e.clientY - box.top;
    return y > box.height * 0.2 && y < box.height * 0.8 ? card : null;
  }

  function clearMarks() {
    canvas.querySelectorAll(".wb-insert-before, .wb-insert-after, .wb-readout-target")
      .forEach((n) => n.classList.remove("wb-insert-before", "wb-insert-after", "wb-readout-target"));
    canvas.classList.remove("wb-drop-active");
  }

  function endDrag() {
    dragKind = null;
    root.classList.remove("wb-dragging");
    clearMarks();
  }

  function markInsertion(index) {
    clearMarks();
    canvas.classList.add("wb-drop-active");
    const list = cards();
    if (!list.length) {
      const empty = canvas.querySelector(".wb-drop-end");
      if (empty) empty.classList.add("wb-insert-before");
      return;
    }
    if (index < list.length) list[index].classList.add("wb-insert-before");
    else list[list.length - 1].classList.add("wb-insert-after");
  }

  canvas.addEventListener("dragover", (e) => {
    const types = Array.from(e.dataTransfer.types || []);
    if (!types.includes(PALETTE_MIME) && !types.includes(READOUT_MIME) && !types.includes(MOVE_MIME)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = types.includes(MOVE_MIME) ? "move" : "copy";
    if (types.includes(READOUT_MIME)) {
      const card = readoutTarget(e);
      if (card) {
        clearMarks();
        canvas.classList.add("wb-drop-active");
        card.classList.add("wb-readout-target");
        return;
      }
    }
    markInsertion(dropIndex(e));
  });
  canvas.addEventListener("dragleave", (e) => {
    if (!canvas.contains(e.relatedTarget)) clearMarks();
  });
  canvas.addEventListener("drop", (e) => {
    e.preventDefault();
    const index = dropIndex(e);
    const readout = e.dataTransfer.getData(READOUT_MIME);
    const key = e.dataTransfer.getData(PALETTE_MIME);
    const from = e.dataTransfer.getData(MOVE_MIME);
    if (readout) {
      const card = readoutTarget(e);
      if (card) send({ action: "apply_readout", index: Number(card.dataset.index), key: readout });
      else send({ action: "add", key: readout, index });
    } else if (key) {
      send({ action: "add", key, index });
    } else if (from !== "") {
      send({ action: "move", from: Number(from), to: index });
    }
    endDrag();
  });

  function dropIndex(e) {
    // Dropping on the end zone (or below every block) appends; on the input node inserts first.
    if (e.target.closest && e.target.closest(".wb-drop-end")) return ((model.view || {}).blocks || []).length;
    if (e.target.closest && e.target.closest(".wb-input")) return 0;
    return insertionIndex(e.clientY);
  }

  function action(name, index, label) {
    return h("button", {
      class: `wb-action wb-action-${name}`, title: label, "aria-label": `${label}`,
      dataset: { action: name },
      onclick: (e) => { e.stopPropagation(); send({ action: name === "up" || name === "down" ? "move" : name,
        ...(name === "up" ? { from: index, to: index - 1 } : name === "down" ? { from: index, to: index + 2 } : { index }) }); },
    }, icon(name));
  }

  function edge(shape, unknown, index) {
    return h("div", { class: `wb-edge${unknown ? " wb-edge-unknown" : ""}`, dataset: { index: String(index) } },
      h("span", { class: "wb-edge-line" }),
      h("span", { class: "wb-shape", title: "Shape flowing along this edge (without the batch dimension)" }, shape),
      h("span", { class: "wb-edge-arrow" }));
  }

  function renderCanvas() {
    const view = model.view || {};
    const blocks = view.blocks || [];
    const input = view.input_node || {};
    const output = view.output_node || {};
    const st = view.status || {};
    status.className = `wb-status ${st.ok ? "wb-ok" : "wb-bad"}`;
    status.replaceChildren(h("span", { class: "wb-status-icon" }, st.ok ? "✓" : "!"),
      h("span", { class: "wb-status-text" }, st.text || ""));

    canvas.replaceChildren();
    const inputNode = h("div", {
      class: `wb-node wb-input${input.selected ? " wb-selected" : ""}${input.error ? " wb-invalid" : ""}`,
      title: "Network input: click to edit the name, task and input shape",
      onclick: () => send({ action: "select", index: -1 }),
    },
      h("div", { class: "wb-node-title" }, "Input"),
      h("div", { class: "wb-node-sub" }, `${input.name || "untitled"} · ${input.task || ""}`),
      input.error ? h("div", { class: "wb-error" }, input.error) : null);
    canvas.append(inputNode);

    blocks.forEach((b, i) => {
      canvas.append(edge(b.in, b.in === "?", i));
      const card = h("div", {
        class: `wb-block wb-kind-${b.group}${b.selected ? " wb-selected" : ""}${b.error ? " wb-invalid" : ""}`,
        draggable: "true", tabindex: "0",
        dataset: { index: String(i), id: b.id, type: b.type },
        onclick: () => send({ action: "select", index: i }),
        ondragstart: (e) => {
          dragKind = "move";
          e.dataTransfer.setData(MOVE_MIME, String(i));
          e.dataTransfer.setData("text/plain", b.id);
          e.dataTransfer.effectAllowed = "move";
          root.classList.add("wb-dragging");
          card.classList.add("wb-being-dragged");
        },
        ondragend: () => endDrag(),
      },
        h("div", { class: "wb-block-head" },
          h("span", { class: "wb-grip", title: "Drag to reorder" }, icon("grip", 14)),
          h("span", { class: "wb-block-id" }, b.id),
          h("span", { class: "wb-block-type" }, b.type),
          h("span", { class: "wb-actions" },
            i > 0 ? action("up", i, "Move up") : null,
            i < blocks.length - 1 ? action("down", i, "Move down") : null,
            action("duplicate", i, "Duplicate"),
            action("delete", i, "Delete"))),
        h("div", { class: "wb-block-summary" }, b.summary || ""),
        b.error ? h("div", { class: "wb-error", role: "alert" }, b.error) : null);
      canvas.append(card);
    });
    if (blocks.length) {
      const last = blocks[blocks.length - 1];
      canvas.append(edge(last.out, last.out === "?", blocks.length));
      canvas.append(h("div", { class: "wb-node wb-output" },
        h("div", { class: "wb-node-title" }, "Output"),
        h("div", { class: "wb-node-sub" }, output.shape || "?")));
    }
    canvas.append(h("div", { class: "wb-drop-end" },
      blocks.length ? "Drop here to append a block" : "Drag blocks from the palette here to build your network"));
  }

  root.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea") return;
    const mod = e.ctrlKey || e.metaKey;
    const selected = ((model.view || {}).blocks || []).findIndex((b) => b.selected);
    if (mod && e.key.toLowerCase() === "z") {
      e.preventDefault();
      send({ action: e.shiftKey ? "redo" : "undo" });
    } else if (mod && e.key.toLowerCase() === "y") {
      e.preventDefault();
      send({ action: "redo" });
    } else if (mod && e.key.toLowerCase() === "d" && selected >= 0) {
      e.preventDefault();
      send({ action: "duplicate", index: selected });
    } else if ((e.key === "Delete" || e.key === "Backspace") && selected >= 0) {
      e.preventDefault();
      send({ action: "delete", index: selected });
    }
  });

  model.on("palette", renderPalette);
  model.on("view", renderCanvas);
  renderPalette();
  renderCanvas();
  return root;
}
