"""The report's interactive 2-D map: self-contained HTML + JavaScript (no CDN, no network, no GPU).

Every point of the t-SNE / UMAP map is drawn on a canvas, coloured by cluster; hovering shows the particle's
central xy and xz slices, its cluster and true class; dragging a box selects particles, and two buttons save the
selection as a DeepFinder XML object list or a RELION STAR file (built in the browser from the data embedded in
the page); for picks read from a STAR file, a third saves the selection as that file's own rows, tables and
columns (RELION 5's, Warp's: what goes back to the program that wrote it). Opening the page with ``#selftest``
selects every point and writes the files' text into the page (``<pre id="selftest-xml">``, ``selftest-star``,
``selftest-own-star``): how the tests check it in a headless browser.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

THUMBNAILS_MAX = 1500  # particles with hover slices (a fixed random subset beyond: bounded page size)

_SCRIPT = r"""
(function () {
  const D = JSON.parse(document.getElementById('dfu-map-data').textContent);
  const canvas = document.getElementById('dfu-map');
  const ctx = canvas.getContext('2d');
  const tip = document.getElementById('dfu-tip');
  const info = document.getElementById('dfu-selection');
  const W = canvas.width, H = canvas.height, PAD = 12;
  const xs = D.points.map(p => p[0]), ys = D.points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const s = Math.min((W - 2 * PAD) / Math.max(x1 - x0, 1e-9), (H - 2 * PAD) / Math.max(y1 - y0, 1e-9));
  const px = D.points.map(p => [PAD + (p[0] - x0) * s, H - PAD - (p[1] - y0) * s]);
  let selected = new Set();
  function draw(box) {
    ctx.clearRect(0, 0, W, H);
    for (let i = 0; i < px.length; i++) {
      ctx.fillStyle = D.colours[D.clusters[i] % D.colours.length];
      ctx.globalAlpha = selected.size && !selected.has(i) ? 0.25 : 0.9;
      ctx.beginPath(); ctx.arc(px[i][0], px[i][1], selected.has(i) ? 3.5 : 2.5, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (box) { ctx.strokeStyle = '#333'; ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]); }
    canvas.dataset.pointsDrawn = px.length;
  }
  function nearest(x, y) {
    let best = -1, bd = 64;
    for (let i = 0; i < px.length; i++) {
      const d = (px[i][0] - x) ** 2 + (px[i][1] - y) ** 2;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }
  function thumb(i) {
    const t = D.thumbs[i];
    if (!t) return null;
    const raw = atob(t), n = D.box, c = document.createElement('canvas');
    c.width = 2 * n; c.height = n;
    const img = c.getContext('2d').createImageData(2 * n, n);
    for (let r = 0; r < n; r++) for (let k = 0; k < 2 * n; k++) {
      const v = raw.charCodeAt(k < n ? r * n + k : n * n + r * n + (k - n)), o = 4 * (r * 2 * n + k);
      img.data[o] = img.data[o + 1] = img.data[o + 2] = v; img.data[o + 3] = 255;
    }
    c.getContext('2d').putImageData(img, 0, 0);
    c.style.width = (4 * n) + 'px'; c.style.height = (2 * n) + 'px'; c.style.imageRendering = 'pixelated';
    return c;
  }
  let dragging = null;
  canvas.addEventListener('mousemove', e => {
    const r = canvas.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    if (dragging) { draw([dragging[0], dragging[1], x, y]); return; }
    const i = nearest(x, y);
    if (i < 0) { tip.style.display = 'none'; return; }
    const o = D.objects[i];
    tip.innerHTML = '';
    const label = document.createElement('div');
    label.textContent = 'cluster ' + D.clusters[i] + (D.truth ? ' | true: ' + D.truth[i] : '') +
      ' | (' + o.x.toFixed(1) + ', ' + o.y.toFixed(1) + ', ' + o.z.toFixed(1) + ')' +
      (o.border_padded ? ' | border' : '');
    tip.appendChild(label);
    const c = thumb(i); if (c) tip.appendChild(c);
    tip.style.left = (e.pageX + 12) + 'px'; tip.style.top = (e.pageY + 12) + 'px'; tip.style.display = 'block';
  });
  canvas.addEventListener('mousedown', e => {
    const r = canvas.getBoundingClientRect(); dragging = [e.clientX - r.left, e.clientY - r.top];
  });
  canvas.addEventListener('mouseup', e => {
    if (!dragging) return;
    const r = canvas.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    selectBox(Math.min(dragging[0], x), Math.min(dragging[1], y), Math.max(dragging[0], x), Math.max(dragging[1], y));
    dragging = null;
  });
  function selectBox(a, b, c, d) {
    selected = new Set();
    for (let i = 0; i < px.length; i++)
      if (px[i][0] >= a && px[i][0] <= c && px[i][1] >= b && px[i][1] <= d) selected.add(i);
    info.textContent = selected.size + ' particles selected';
    draw();
  }
  function attr(k, v) {
    const text = String(v).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    return ' ' + k + '="' + text + '"';
  }
  function xmlText() {
    let out = '<objlist>\n';
    for (const i of [...selected].sort((a, b) => a - b)) {
      const o = D.objects[i];
      let line = '  <object' + attr('tomo_idx', o.tomo_idx) + attr('class_label', D.clusters[i]);
      for (const k of ['obj_id', 'x', 'y', 'z', 'phi', 'the', 'psi', 'source', 'tomo_name'])
        if (o[k] !== null && o[k] !== undefined) line += attr(k, o[k]);
      if (o.label !== null && o.label !== undefined) line += attr('true_label', o.label);
      out += line + '/>\n';
    }
    return out + '</objlist>\n';
  }
  function starText(parts) {  // a STAR file cut to the selection: its text before the rows, the rows, after
    const idx = [...selected].sort((a, b) => a - b);
    return parts.head + idx.map(i => parts.rows[i] + '\t' + D.clusters[i] + '\n').join('') + parts.tail;
  }
  function save(text, name, type) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], {type: type}));
    a.download = name; document.body.appendChild(a); a.click(); a.remove();
  }
  document.getElementById('dfu-save-xml').onclick = () => save(xmlText(), 'selection.xml', 'application/xml');
  document.getElementById('dfu-save-star').onclick = () => save(starText(D.star), 'selection.star', 'text/plain');
  const ownButton = document.getElementById('dfu-save-own-star');
  if (D.own_star) ownButton.onclick = () => save(starText(D.own_star), 'selection_particles.star', 'text/plain');
  else ownButton.style.display = 'none';
  draw();
  if (location.hash === '#selftest') {
    selectBox(-1, -1, W + 1, H + 1);
    document.getElementById('selftest-xml').textContent = xmlText();
    document.getElementById('selftest-star').textContent = starText(D.star);
    if (D.own_star) document.getElementById('selftest-own-star').textContent = starText(D.own_star);
  }
})();
"""

_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def thumbnail_bytes(slices: np.ndarray) -> list[str]:
    """Central xy and xz slices (n, 2, B, B) as base64 uint8 (contrast stretched per particle)."""
    out = []
    for pair in np.asarray(slices, np.float32):
        lo, hi = np.percentile(pair, [1, 99])
        scaled = np.clip((pair - lo) / max(hi - lo, 1e-6), 0, 1)
        out.append(base64.b64encode((scaled * 255).astype(np.uint8).tobytes()).decode())
    return out


def map_data(
    coords: np.ndarray,
    clusters: np.ndarray,
    objl: list,
    truth_names: list | None = None,
    thumb_index: np.ndarray | None = None,
    thumb_slices: np.ndarray | None = None,
    star_source: Path | None = None,
    geometry: dict | None = None,
) -> dict:
    """The JSON the page's script reads: points, clusters, objects (for the downloads), and the central slices
    ``thumb_slices`` (m, 2, B, B) of the points ``thumb_index`` (at most THUMBNAILS_MAX of them); with
    ``star_source``, the STAR file the picks came from (each object's ``star_row``), its text for the selection;
    the package's STAR file of the objects (``geometry``: {tomogram stem: (size, voxel size)}, for RELION 5's
    centred coordinates) the same way, so a selection saves as the rows ``clusters_k{K}.star`` has."""
    n = len(coords)
    thumbs: list = [None] * n
    if thumb_index is not None and thumb_slices is not None:
        for i, t in zip(thumb_index, thumbnail_bytes(thumb_slices)):
            thumbs[int(i)] = t
    objects = []
    for obj in objl:
        row = {k: obj.get(k) for k in ("tomo_idx", "obj_id", "x", "y", "z", "phi", "the", "psi", "label", "source")}
        row["tomo_idx"] = row["tomo_idx"] or 0
        row["border_padded"] = bool(obj.get("border_padded"))
        source = str(obj.get("source") or "")
        name = obj.get("tomo_name") or (Path(source).stem if source and not source.endswith(".h5") else None)
        row["tomo_name"] = name or f"tomo{row['tomo_idx']}"
        objects.append(row)
    return {
        "points": np.round(np.asarray(coords, float), 3).tolist(),
        "clusters": [int(c) for c in clusters],
        "truth": truth_names,
        "objects": objects,
        "thumbs": thumbs,
        "box": int(thumb_slices.shape[-1]) if thumb_slices is not None else 0,
        "colours": _PALETTE,
        "star": _package_star(objl, geometry),
        "own_star": _own_star(star_source, objl),
    }


def _package_star(objl: list, geometry: dict | None) -> dict:
    """The objects as the package's STAR file (``io.write_star``: what ``clusters_k{K}.star`` holds) cut into its text
    before the rows, each object's row and the text after, for the selection's download."""
    import tempfile

    from .io.star import star_rows_as_text, write_star

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "objects.star"
        write_star([{**obj, "label": 0} for obj in objl], path, geometry=geometry)
        head, rows, tail = star_rows_as_text(path, range(len(objl)))
    return {"head": head, "rows": rows, "tail": tail}


def _own_star(source: Path | None, objl: list) -> dict | None:
    """The picks' STAR file cut into its text before the rows, each object's row and the text after (None without
    a file or when an object has no row in it)."""
    if source is None or any(obj.get("star_row") is None for obj in objl):
        return None
    from .io.star import star_rows_as_text

    head, rows, tail = star_rows_as_text(source, [int(obj["star_row"]) for obj in objl])
    return {"head": head, "rows": rows, "tail": tail}


def interactive_section(data: dict, title: str) -> str:
    """The HTML of the interactive map (canvas, tooltip, buttons, embedded data and script)."""
    payload = json.dumps(data, separators=(",", ":"), default=str).replace("</", "<\\/")
    return f"""<section><h2>{html.escape(title)}</h2>
<p>Hover a point to see the particle; drag a box to select particles, then save them:
<button id="dfu-save-xml">save selection as DeepFinder XML</button>
<button id="dfu-save-star">save selection as RELION STAR</button>
<button id="dfu-save-own-star">save selection in your picks' STAR file</button> <span id="dfu-selection"></span></p>
<canvas id="dfu-map" width="640" height="560" style="border:1px solid #ccc"></canvas>
<div id="dfu-tip" style="position:absolute;display:none;background:#fff;border:1px solid #888;padding:4px;
font-size:12px;pointer-events:none"></div>
<pre id="selftest-xml" style="display:none"></pre><pre id="selftest-star" style="display:none"></pre>
<pre id="selftest-own-star" style="display:none"></pre>
<script type="application/json" id="dfu-map-data">{payload}</script>
<script>{_SCRIPT}</script></section>"""
