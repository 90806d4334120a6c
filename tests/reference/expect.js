'use strict'
// Computes the expected decode of a firehose capture with the reference
// atproto TypeScript libraries only, one JSON line per frame:
//
//   {"i": N, "header": {...}, "body": BODY, "records": RECORDS}
//
// - header/body: the two concatenated DAG-CBOR objects of the frame, decoded
//   with @atproto/common cborDecodeMulti, converted with @atproto/lexicon
//   lexToJson (CID -> {"$link"}, bytes -> {"$bytes"}); the body's `blocks`
//   field (CAR bytes) is removed.
// - records: for #commit, one entry per op in order:
//   {"action", "path", "cid": string|null, "record": JSON|null}, the record
//   taken from the CAR (@atproto/repo readCar, which verifies block CIDs by
//   default), decoded with @atproto/repo cborToLexRecord and converted with
//   lexToJson. record is null for deletes or a block missing from the CAR.
//   For all other frame types (and error frames) records is [].
//
// Usage: node expect.js [CAPTURE] [OUTPUT]
//   defaults: ../data/firehose-capture.bin ../data/firehose-expected.jsonl

const fs = require('node:fs')
const path = require('node:path')
const { cborDecodeMulti } = require('@atproto/common')
const { readCar, cborToLexRecord } = require('@atproto/repo')
const { lexToJson } = require('@atproto/lexicon')

const DATA = path.join(__dirname, '..', 'data')
const CAPTURE = process.argv[2] || path.join(DATA, 'firehose-capture.bin')
const OUTPUT = process.argv[3] || path.join(DATA, 'firehose-expected.jsonl')

function readCapture(file) {
  const buf = fs.readFileSync(file)
  if (buf.length < 8 || buf.subarray(0, 8).toString('latin1') !== 'atkvcap1') {
    throw new Error(`${file}: not an atkvcap1 capture`)
  }
  const frames = []
  let off = 8
  while (off < buf.length) {
    if (off + 4 > buf.length) throw new Error(`${file}: truncated length`)
    const n = buf.readUInt32BE(off)
    off += 4
    if (off + n > buf.length) throw new Error(`${file}: truncated frame`)
    frames.push(buf.subarray(off, off + n))
    off += n
  }
  return frames
}

async function expectFrame(i, frame) {
  const objs = cborDecodeMulti(frame)
  if (objs.length !== 2) {
    throw new Error(`frame ${i}: expected 2 CBOR objects, got ${objs.length}`)
  }
  const [header, body] = objs
  const { blocks, ...rest } = body
  const out = {
    i,
    header: lexToJson(header),
    body: lexToJson(rest),
    records: [],
  }
  if (header.op === 1 && header.t === '#commit') {
    const car = blocks ? await readCar(blocks) : null
    for (const op of body.ops) {
      const cid = op.cid ? op.cid.toString() : null
      let record = null
      if (cid && car) {
        const bytes = car.blocks.get(op.cid)
        if (bytes) record = lexToJson(cborToLexRecord(bytes))
      }
      out.records.push({ action: op.action, path: op.path, cid, record })
    }
  }
  return out
}

async function main() {
  const frames = readCapture(CAPTURE)
  const lines = []
  for (let i = 0; i < frames.length; i++) {
    lines.push(JSON.stringify(await expectFrame(i, frames[i])))
  }
  fs.writeFileSync(OUTPUT, lines.length ? lines.join('\n') + '\n' : '')
  console.error(`[expect] ${frames.length} frames -> ${lines.length} lines in ${OUTPUT}`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
