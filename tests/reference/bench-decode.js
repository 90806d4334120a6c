'use strict'
// TypeScript-stack baseline for the firehose decode benchmark.
//
// Usage: node bench-decode.js CAPTURE_FILE [--seconds S]   (default 5)
//
// Loads every frame of an atkvcap1 capture into memory (not timed), then
// makes full passes over all frames until S seconds have elapsed (at least
// one pass; the clock is checked between passes). Per frame it does the work
// the C decoder does (frame -> per-op record JSON), with the reference
// libraries' default behaviour:
//   - @atproto/common cborDecodeMulti: header + body (two DAG-CBOR objects)
//   - @atproto/repo readCar (async; verifies every block's CID by default)
//     on the body's `blocks` for #commit frames
//   - for each op with a cid: BlockMap.get, @atproto/repo cborToLexRecord,
//     then JSON.stringify(@atproto/lexicon lexToJson(record))
// Output byte lengths go into a sink so no work is skipped.
//
// Prints one line:
//   ts-reference: frames=N bytes=B seconds=S frames_per_s=F mb_per_s=M records=R

const fs = require('node:fs')
const { cborDecodeMulti } = require('@atproto/common')
const { readCar, cborToLexRecord } = require('@atproto/repo')
const { lexToJson } = require('@atproto/lexicon')

function usage() {
  console.error('usage: node bench-decode.js CAPTURE_FILE [--seconds S]')
  process.exit(2)
}

function parseArgs(argv) {
  let file = null
  let seconds = 5
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--seconds') {
      seconds = Number(argv[++i])
      if (!(seconds > 0)) usage()
    } else if (a.startsWith('--seconds=')) {
      seconds = Number(a.slice('--seconds='.length))
      if (!(seconds > 0)) usage()
    } else if (!file && !a.startsWith('--')) {
      file = a
    } else {
      usage()
    }
  }
  if (!file) usage()
  return { file, seconds }
}

function readCapture(file) {
  const buf = fs.readFileSync(file)
  if (buf.length < 8 || buf.subarray(0, 8).toString('latin1') !== 'atkvcap1') {
    throw new Error(`${file}: not an atkvcap1 capture`)
  }
  const frames = []
  let off = 8
  while (off + 4 <= buf.length) {
    const n = buf.readUInt32BE(off)
    off += 4
    if (off + n > buf.length) throw new Error(`${file}: truncated frame`)
    // own copy per frame, as a socket would deliver it
    frames.push(new Uint8Array(buf.subarray(off, off + n)))
    off += n
  }
  return frames
}

async function decodeFrame(frame) {
  const [header, body] = cborDecodeMulti(frame)
  let sink = 0
  let records = 0
  if (header.op === 1 && header.t === '#commit' && body.blocks) {
    const car = await readCar(body.blocks)
    for (const op of body.ops) {
      if (!op.cid) continue
      const bytes = car.blocks.get(op.cid)
      if (!bytes) continue
      const json = JSON.stringify(lexToJson(cborToLexRecord(bytes)))
      sink += json.length
      records++
    }
  }
  return { sink, records }
}

async function main() {
  const { file, seconds } = parseArgs(process.argv.slice(2))
  const frames = readCapture(file)
  const passBytes = frames.reduce((n, f) => n + f.length, 0)

  let nFrames = 0
  let nBytes = 0
  let nRecords = 0
  let sink = 0
  const start = process.hrtime.bigint()
  let elapsed = 0
  do {
    for (const frame of frames) {
      const r = await decodeFrame(frame)
      sink += r.sink
      nRecords += r.records
    }
    nFrames += frames.length
    nBytes += passBytes
    elapsed = Number(process.hrtime.bigint() - start) / 1e9
  } while (elapsed < seconds)

  if (sink < 0) console.error('impossible') // keep the sink observable
  const fps = nFrames / elapsed
  const mbps = nBytes / 1e6 / elapsed
  console.log(
    `ts-reference: frames=${nFrames} bytes=${nBytes} seconds=${elapsed.toFixed(3)}` +
      ` frames_per_s=${fps.toFixed(1)} mb_per_s=${mbps.toFixed(3)} records=${nRecords}`,
  )
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
