// Times ONNX Runtime (npm onnxruntime-node, CPU) on one model, the way compare_ort.py
// times nnjit: session creation, then warmup runs, then timed runs of one input.
//   node bench/ort/runner.mjs MODEL INPUT.npy THREADS ITERATIONS WARMUP [GAP_MS]
// (GAP_MS: idle milliseconds before each timed run, untimed, as nnjit bench --gap-ms.)
// Prints one JSON object: {"load_ms", "p50_ms", "p90_ms", "mean_ms", "iterations"}.
import fs from 'fs';
import { createRequire } from 'module';
const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

function readNpy(path) {  // float32, C order, little-endian: what tools/export_zoo.py writes
  const buf = fs.readFileSync(path);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString('latin1');
  if (!header.includes("'<f4'")) throw new Error(`${path}: only float32 .npy inputs are supported`);
  const shape = header.match(/\(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length));
  return { shape, data };
}

const [model, input, threads, iterations, warmup, gapMs = '0'] = process.argv.slice(2);
const idle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const t0 = performance.now();
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const loadMs = performance.now() - t0;
const { shape, data } = readNpy(input);
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
for (let i = 0; i < Number(warmup); ++i) await session.run(feeds);
const times = [];
for (let i = 0; i < Number(iterations); ++i) {
  if (Number(gapMs) > 0) await idle(Number(gapMs));
  const a = performance.now();
  await session.run(feeds);
  times.push(performance.now() - a);
}
times.sort((x, y) => x - y);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
console.log(JSON.stringify({ load_ms: loadMs, p50_ms: at(0.5), p90_ms: at(0.9),
  mean_ms: times.reduce((s, x) => s + x, 0) / times.length, iterations: times.length }));
