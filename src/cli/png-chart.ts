// A line chart as a PNG file, with no dependency: an RGB raster, lines,
// a 3x5 pixel font for labels, and a PNG encoder (signature, IHDR, one IDAT
// deflated with node:zlib, IEND; CRC-32 per chunk). Used by
// `tpsd history --png` for limit vs demand vs granted.

import { deflateSync } from 'node:zlib';

export type Rgb = readonly [number, number, number];

export interface ChartSeries {
  name: string;
  color: Rgb;
  values: readonly number[];
}

export interface ChartOptions {
  width: number;
  height: number;
  title: string;
  /** Labels under the x axis: left, right. */
  xLabels: [string, string];
  series: ChartSeries[];
}

// 3x5 glyphs: five rows of three bits, one octal digit per row.
const FONT: Record<string, string> = {
  0: '75557', 1: '26227', 2: '71747', 3: '71717', 4: '55711', 5: '74717', 6: '74757', 7: '71111', 8: '75757', 9: '75717',
  '.': '00002', ':': '02020', '-': '00700', '/': '11244', ' ': '00000', '%': '51245', '(': '24442', ')': '21112',
  A: '25755', B: '65656', C: '34443', D: '65556', E: '74647', F: '74644', G: '34553', H: '55755', I: '72227', J: '11152',
  K: '55655', L: '44447', M: '57755', N: '65555', O: '25552', P: '65644', Q: '25563', R: '65655', S: '34216', T: '72222',
  U: '55557', V: '55552', W: '55775', X: '55255', Y: '55222', Z: '71247',
};

export class Raster {
  readonly pixels: Uint8Array;
  constructor(readonly width: number, readonly height: number, bg: Rgb = [255, 255, 255]) {
    this.pixels = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.pixels.set(bg, i * 3);
  }

  set(x: number, y: number, c: Rgb): void {
    x = Math.round(x); y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.pixels.set(c, (y * this.width + x) * 3);
  }

  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, c);
  }

  /** A line `thick` pixels wide (Bresenham, stamped). */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thick = 1): void {
    x0 = Math.round(x0); y0 = Math.round(y0); x1 = Math.round(x1); y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    const off = Math.floor((thick - 1) / 2);
    for (;;) {
      this.rect(x0 - off, y0 - off, thick, thick, c);
      if (x0 === x1 && y0 === y1) return;
      const e2 = 2 * err;
      if (e2 >= dy) { err += dy; x0 += sx; }
      if (e2 <= dx) { err += dx; y0 += sy; }
    }
  }

  /** Text at (x, y) top-left, each font pixel `scale` pixels; returns the width drawn. */
  text(x: number, y: number, s: string, c: Rgb, scale = 2): number {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = FONT[ch] ?? FONT[' '];
      for (let row = 0; row < 5; row++) {
        const bits = Number(g[row]);
        for (let col = 0; col < 3; col++) if (bits & (4 >> col)) this.rect(cx + col * scale, y + row * scale, scale, scale, c);
      }
      cx += 4 * scale;
    }
    return cx - x;
  }
}

export function textWidth(s: string, scale = 2): number { return s.length * 4 * scale; }

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** An 8-bit RGB PNG of the raster (filter 0 on every row). */
export function encodePng(r: Raster): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(r.width, 0);
  ihdr.writeUInt32BE(r.height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, no filter, no interlace
  const stride = r.width * 3;
  const raw = Buffer.alloc((stride + 1) * r.height);
  for (let y = 0; y < r.height; y++) raw.set(r.pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

const INK: Rgb = [40, 40, 40];
const GRID: Rgb = [225, 225, 225];

/** Formats an axis value: 0, 950, 1.5K, 2M. */
function axisNum(x: number): string {
  if (x >= 1e6) return `${+(x / 1e6).toFixed(1)}M`;
  if (x >= 1e4) return `${+(x / 1e3).toFixed(1)}K`;
  return String(+x.toFixed(x < 10 ? 1 : 0));
}

/** Renders the chart and returns the PNG bytes. */
export function renderChart(o: ChartOptions): Buffer {
  const r = new Raster(o.width, o.height);
  const left = 70, right = 16, top = 44, bottom = 34;
  const pw = Math.max(1, o.width - left - right), ph = Math.max(1, o.height - top - bottom);
  const all = o.series.flatMap((s) => s.values.filter(Number.isFinite));
  const max = Math.max(1, ...all) * 1.1;
  r.text(left, 8, o.title, INK);
  let lx = left;
  for (const s of o.series) {
    r.rect(lx, 26, 14, 8, s.color);
    lx += 20 + r.text(lx + 18, 26, s.name, INK) + 10;
  }
  for (let k = 0; k <= 4; k++) {
    const y = top + ph - (ph * k) / 4;
    r.line(left, y, left + pw, y, GRID);
    const label = axisNum((max * k) / 4);
    r.text(left - 8 - textWidth(label), y - 5, label, INK);
  }
  r.line(left, top, left, top + ph, INK);
  r.line(left, top + ph, left + pw, top + ph, INK);
  r.text(left, top + ph + 10, o.xLabels[0], INK);
  r.text(left + pw - textWidth(o.xLabels[1]), top + ph + 10, o.xLabels[1], INK);
  for (const s of o.series) {
    const n = s.values.length;
    let prev: [number, number] | null = null;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) { prev = null; return; }
      const x = left + (n <= 1 ? pw / 2 : (pw * i) / (n - 1));
      const y = top + ph - (ph * Math.max(0, v)) / max;
      if (prev) r.line(prev[0], prev[1], x, y, s.color, 2); else r.rect(x - 1, y - 1, 2, 2, s.color);
      prev = [x, y];
    });
  }
  return encodePng(r);
}
