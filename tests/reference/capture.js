'use strict'
// Records a reference firehose capture from a real @atproto/dev-env PDS.
//
// Starts TestNetworkNoAppView (PLC + PDS) on loopback, subscribes to
// com.atproto.sync.subscribeRepos before any activity, drives realistic
// activity with AtpAgent, waits until the socket is quiet, then writes every
// binary WebSocket message exactly as received.
//
// Output format ("atkvcap1"): the 8 ASCII bytes `atkvcap1`, then per frame a
// 4-byte big-endian unsigned length followed by the frame bytes.
//
// Beside it, OUTPUT with -docs.jsonl for .bin: the DID document of every account in the
// capture, one JSON object a line, as the PLC directory served it before the network closed
// (the signing keys that verify its commits).
//
// Usage: node capture.js [OUTPUT]   (default ../data/firehose-capture.bin)

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const zlib = require('node:zlib')
const WebSocket = require('ws')
const { TestNetworkNoAppView } = require('@atproto/dev-env')
const { AtpAgent, RichText } = require('@atproto/api')
const { cborDecodeMulti } = require('@atproto/common')

const OUT =
  process.argv[2] ||
  path.join(__dirname, '..', 'data', 'firehose-capture.bin')
const QUIET_MS = 2000

const log = (...args) => console.error('[capture]', ...args)
const failures = []

// Runs one activity step; a failure is logged and recorded, never fatal.
async function step(name, fn) {
  try {
    return await fn()
  } catch (err) {
    const msg = `${name}: ${err && err.message ? err.message : err}`
    failures.push(msg)
    log('FAILED', msg)
    return undefined
  }
}

// ---- tiny PNG writer (so the blobs are real images) ----
const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()
function crc32(buf) {
  let c = 0xffffffff
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
function pngChunk(type, data) {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(td))
  return Buffer.concat([len, td, crc])
}
function makePng(width, height, pixel) {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // colour type RGB
  const raw = Buffer.alloc(height * (1 + width * 3))
  let o = 0
  for (let y = 0; y < height; y++) {
    raw[o++] = 0 // filter: none
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y)
      raw[o++] = r
      raw[o++] = g
      raw[o++] = b
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function main() {
  log('starting TestNetworkNoAppView')
  // TestPds puts its databases and blobs under os.tmpdir(): point that at a
  // private temp dir that is removed at the end
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atkv-capture-'))
  process.env.TMPDIR = tmp
  const network = await TestNetworkNoAppView.create({})
  const pdsUrl = network.pds.url
  const port = network.pds.port
  log('PDS at', pdsUrl)

  // ---- subscribe before any activity ----
  const frames = []
  let lastFrameAt = Date.now()
  let textMessages = 0
  const wsUrl = `ws://localhost:${port}/xrpc/com.atproto.sync.subscribeRepos`
  const ws = new WebSocket(wsUrl)
  ws.on('message', (data, isBinary) => {
    lastFrameAt = Date.now()
    if (!isBinary) {
      textMessages++
      return
    }
    // `data` is a Buffer for an unfragmented message, or an array of
    // Buffers / ArrayBuffer depending on binaryType; default is nodebuffer.
    frames.push(Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.concat(data))
  })
  ws.on('error', (err) => log('websocket error', err.message))
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  log('subscribed', wsUrl)

  // ---- accounts ----
  const names = ['alice', 'bob', 'carol', 'dave']
  const agents = {}
  for (const name of names) {
    await step(`createAccount ${name}`, async () => {
      const agent = new AtpAgent({ service: pdsUrl })
      await agent.createAccount({
        handle: `${name}.test`,
        email: `${name}@example.com`,
        password: `${name}-pass`,
      })
      agents[name] = agent
    })
  }
  const { alice, bob, carol, dave } = agents
  const did = (a) => a.session.did

  // ---- profiles (create), avatar blob ----
  const avatarPng = makePng(16, 16, (x, y) => [x * 16, y * 16, 128])
  let avatar
  await step('uploadBlob avatar', async () => {
    const res = await alice.uploadBlob(avatarPng, { encoding: 'image/png' })
    avatar = res.data.blob
  })
  await step('profile create alice', () =>
    alice.upsertProfile(() => ({
      displayName: 'Alice',
      description: 'First profile, plain ASCII.',
    })),
  )
  await step('profile create bob', () =>
    bob.upsertProfile(() => ({
      displayName: 'Bob 🐝',
      description: 'Ünïcödé bio — 日本語テキスト\nsecond line',
    })),
  )
  await step('profile create carol', () =>
    carol.upsertProfile(() => ({ displayName: 'Carol' })),
  )

  // ---- posts ----
  const posts = {}
  const post = async (key, agent, record) =>
    step(`post ${key}`, async () => {
      const res = await agent.post(record)
      posts[key] = res // { uri, cid }
      return res
    })

  await post('plain', alice, { text: 'Hello, firehose!' })
  await post('unicode', bob, {
    text: 'héllo wörld 🌍🚀 — 日本語 中文 한국어 עברית العربية 👩‍👩‍👧‍👦 🇫🇷 e\u0301 "quotes" \\ backslash \ttab',
    langs: ['en', 'ja'],
  })
  await step('post facets', async () => {
    const rt = new RichText({
      text: 'Hey @bob.test check https://example.com/path?q=1&r=ü and #atproto 🎉',
    })
    await rt.detectFacets(alice)
    posts.facets = await alice.post({ text: rt.text, facets: rt.facets })
  })
  await post('carol1', carol, { text: 'carol writes a thread root' })
  if (posts.carol1) {
    await post('reply', alice, {
      text: 'a reply to carol',
      reply: {
        root: { uri: posts.carol1.uri, cid: posts.carol1.cid },
        parent: { uri: posts.carol1.uri, cid: posts.carol1.cid },
      },
    })
  }
  if (posts.carol1 && posts.reply) {
    await post('reply2', bob, {
      text: 'nested reply',
      reply: {
        root: { uri: posts.carol1.uri, cid: posts.carol1.cid },
        parent: { uri: posts.reply.uri, cid: posts.reply.cid },
      },
    })
  }
  if (posts.unicode) {
    await post('quote', carol, {
      text: 'quoting bob',
      embed: {
        $type: 'app.bsky.embed.record',
        record: { uri: posts.unicode.uri, cid: posts.unicode.cid },
      },
    })
  }
  await step('post image', async () => {
    const png = makePng(8, 6, (x, y) => [255 - x * 30, y * 40, 60])
    const up = await dave.uploadBlob(png, { encoding: 'image/png' })
    posts.image = await dave.post({
      text: 'a tiny picture',
      embed: {
        $type: 'app.bsky.embed.images',
        images: [
          {
            image: up.data.blob,
            alt: 'gradient, 8×6 pixels',
            aspectRatio: { width: 8, height: 6 },
          },
        ],
      },
    })
  })
  await post('external', dave, {
    text: 'link card',
    embed: {
      $type: 'app.bsky.embed.external',
      external: {
        uri: 'https://example.com/article',
        title: 'An article',
        description: 'Its description',
      },
    },
  })
  for (let i = 0; i < 6; i++) {
    const who = [alice, bob, carol, dave][i % 4]
    await post(`filler${i}`, who, { text: `filler post number ${i}` })
  }

  // ---- follows ----
  const follows = []
  for (const a of names) {
    for (const b of names) {
      if (a === b || !agents[a] || !agents[b]) continue
      await step(`follow ${a}->${b}`, async () => {
        follows.push(await agents[a].follow(did(agents[b])))
      })
    }
  }

  // ---- likes ----
  const likes = []
  const postKeys = Object.keys(posts)
  for (const name of names) {
    const agent = agents[name]
    if (!agent) continue
    for (const key of postKeys) {
      await step(`like ${name} ${key}`, async () => {
        likes.push(await agent.like(posts[key].uri, posts[key].cid))
      })
    }
  }

  // ---- reposts ----
  const reposts = []
  for (const [who, key] of [
    [alice, 'unicode'],
    [bob, 'image'],
    [dave, 'facets'],
  ]) {
    if (!who || !posts[key]) continue
    await step(`repost ${key}`, async () => {
      reposts.push(await who.repost(posts[key].uri, posts[key].cid))
    })
  }

  // ---- unlikes / unfollow / unrepost (deletes) ----
  const unliked = new Set()
  for (const idx of [0, 3, 7, 12, 20, 33]) {
    const like = likes[idx]
    if (!like) continue
    unliked.add(like.uri)
    const owner = names
      .map((n) => agents[n])
      .find((a) => a && like.uri.includes(did(a)))
    await step(`unlike ${idx}`, () => owner.deleteLike(like.uri))
  }
  if (follows[0]) {
    await step('unfollow', () => alice.deleteFollow(follows[0].uri))
  }
  if (reposts[2]) {
    await step('unrepost', () => dave.deleteRepost(reposts[2].uri))
  }

  // ---- profile updates (with avatar) ----
  await step('profile update alice (avatar)', () =>
    alice.upsertProfile((existing) => ({
      ...existing,
      displayName: 'Alice Liddell',
      description: 'Updated bio 📝 with avatar',
      avatar,
    })),
  )
  await step('profile update bob', () =>
    bob.upsertProfile((existing) => ({
      ...existing,
      description: 'Bob changed his bio',
    })),
  )

  // ---- batch write: several creates/updates/deletes in one commit ----
  await step('applyWrites batch', async () => {
    const repo = did(carol)
    // seed two posts to update/delete in the batch
    const a = await carol.post({ text: 'to be updated in a batch' })
    const b = await carol.post({ text: 'to be deleted in a batch' })
    const rkeyOf = (uri) => uri.split('/').pop()
    const now = new Date().toISOString()
    const writes = []
    for (let i = 0; i < 5; i++) {
      writes.push({
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: {
          $type: 'app.bsky.feed.post',
          text: `batch post ${i} ✨`,
          createdAt: now,
        },
      })
    }
    writes.push({
      $type: 'com.atproto.repo.applyWrites#create',
      collection: 'app.bsky.feed.like',
      value: {
        $type: 'app.bsky.feed.like',
        subject: { uri: posts.plain.uri, cid: posts.plain.cid },
        createdAt: now,
      },
    })
    writes.push({
      $type: 'com.atproto.repo.applyWrites#update',
      collection: 'app.bsky.feed.post',
      rkey: rkeyOf(a.uri),
      value: {
        $type: 'app.bsky.feed.post',
        text: 'updated in a batch',
        createdAt: now,
      },
    })
    writes.push({
      $type: 'com.atproto.repo.applyWrites#delete',
      collection: 'app.bsky.feed.post',
      rkey: rkeyOf(b.uri),
    })
    writes.push({
      $type: 'com.atproto.repo.applyWrites#create',
      collection: 'app.bsky.graph.block',
      value: {
        $type: 'app.bsky.graph.block',
        subject: did(dave),
        createdAt: now,
      },
    })
    await carol.com.atproto.repo.applyWrites({ repo, writes })
  })
  // a second batch: only deletes (four of bob's remaining likes)
  await step('applyWrites batch 2', async () => {
    const bobDid = did(bob)
    const bobLikes = likes
      .filter((l) => l.uri.includes(bobDid) && !unliked.has(l.uri))
      .slice(2, 6)
    const writes = bobLikes.map((l) => ({
      $type: 'com.atproto.repo.applyWrites#delete',
      collection: 'app.bsky.feed.like',
      rkey: l.uri.split('/').pop(),
    }))
    await bob.com.atproto.repo.applyWrites({ repo: bobDid, writes })
  })

  // ---- a record of a non-Bluesky collection exercising the data model:
  // bytes, cid-link, nested arrays/maps, booleans, null, integers ----
  await step('custom collection record', async () => {
    await dave.com.atproto.repo.createRecord({
      repo: did(dave),
      collection: 'com.example.atkv.sample',
      rkey: 'self',
      validate: false,
      record: {
        $type: 'com.example.atkv.sample',
        bytes: { $bytes: 'AAECAwT/+w' },
        link: { $link: posts.plain ? posts.plain.cid : 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm' },
        ints: [0, 1, -1, 23, 24, 255, 256, 65535, 65536, -4294967296, 9007199254740991],
        flags: { yes: true, no: false, nothing: null },
        nested: [[], {}, [{ a: 'x' }], ''],
        text: 'tab\there "quote" \\ slash / nul-free \u00e9\u{1F600}',
        createdAt: new Date().toISOString(),
      },
    })
  })

  // ---- identity: handle change ----
  await step('updateHandle dave', () =>
    dave.com.atproto.identity.updateHandle({ handle: 'dave2.test' }),
  )

  // ---- account: deactivate + activate ----
  await step('deactivateAccount bob', () =>
    bob.com.atproto.server.deactivateAccount({}),
  )
  await step('activateAccount bob', () =>
    bob.com.atproto.server.activateAccount(),
  )

  // ---- account: takedown + reversal (admin) ----
  const adminHeaders = network.pds.adminAuthHeaders()
  const admin = new AtpAgent({ service: pdsUrl })
  await step('takedown carol', () =>
    admin.com.atproto.admin.updateSubjectStatus(
      {
        subject: { $type: 'com.atproto.admin.defs#repoRef', did: did(carol) },
        takedown: { applied: true, ref: 'test-takedown' },
      },
      { encoding: 'application/json', headers: adminHeaders },
    ),
  )
  await step('reverse takedown carol', () =>
    admin.com.atproto.admin.updateSubjectStatus(
      {
        subject: { $type: 'com.atproto.admin.defs#repoRef', did: did(carol) },
        takedown: { applied: false },
      },
      { encoding: 'application/json', headers: adminHeaders },
    ),
  )

  // ---- account: a short-lived account that gets deleted ----
  await step('create + delete account erin', async () => {
    const erin = new AtpAgent({ service: pdsUrl })
    await erin.createAccount({
      handle: 'erin.test',
      email: 'erin@example.com',
      password: 'erin-pass',
    })
    await erin.post({ text: 'erin was here briefly' })
    await admin.com.atproto.admin.deleteAccount(
      { did: erin.session.did },
      { encoding: 'application/json', headers: adminHeaders },
    )
  })

  // ---- last writes after the account events ----
  await post('after', bob, { text: 'back again after reactivation' })
  await post('final', dave, { text: 'last post with the new handle' })

  // ---- wait for the socket to drain ----
  await network.processAll()
  const seqCurr = await network.pds.ctx.sequencer.curr()
  for (;;) {
    await sleep(200)
    if (Date.now() - lastFrameAt >= QUIET_MS) break
  }
  ws.close()
  await new Promise((r) => {
    if (ws.readyState === WebSocket.CLOSED) return r()
    ws.once('close', r)
    setTimeout(r, 2000)
  })

  // ---- the DID documents of the accounts in the capture ----
  const dids = new Set()
  for (const f of frames) {
    const [, body] = cborDecodeMulti(f)
    const did = body && (body.repo || body.did)
    if (typeof did === 'string') dids.add(did)
  }
  const docs = []
  for (const did of dids) {
    const res = await fetch(`${network.plc.url}/${encodeURIComponent(did)}`)
    if (res.ok) docs.push(JSON.stringify(await res.json()))
    else log(`no DID document for ${did}: HTTP ${res.status}`)
  }
  const docsOut = OUT.replace(/\.bin$/, '') + '-docs.jsonl'
  fs.mkdirSync(path.dirname(docsOut), { recursive: true })
  fs.writeFileSync(docsOut, docs.join('\n') + '\n')
  log(`wrote ${docsOut}: ${docs.length} DID documents`)
  await network.close()
  fs.rmSync(tmp, { recursive: true, force: true })
  log('network closed')

  // ---- write the capture ----
  const parts = [Buffer.from('atkvcap1', 'ascii')]
  for (const f of frames) {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(f.length)
    parts.push(len, f)
  }
  fs.mkdirSync(path.dirname(OUT), { recursive: true })
  fs.writeFileSync(OUT, Buffer.concat(parts))

  // ---- summary (decoding only for the log; the file holds raw bytes) ----
  const types = {}
  let lastSeq = 0
  let gaps = 0
  for (const f of frames) {
    const [header, body] = cborDecodeMulti(f)
    const t = header.op === -1 ? 'error' : header.t
    types[t] = (types[t] || 0) + 1
    if (body && typeof body.seq === 'number') {
      if (body.seq !== lastSeq + 1) gaps++
      lastSeq = body.seq
    }
  }
  const total = parts.reduce((n, p) => n + p.length, 0)
  log(`wrote ${OUT}: ${frames.length} frames, ${total} bytes`)
  log('frame types', JSON.stringify(types))
  log(`last seq ${lastSeq}, sequencer curr ${seqCurr}, seq gaps ${gaps}`)
  if (textMessages) log(`ignored ${textMessages} text messages`)
  if (failures.length) {
    log(`${failures.length} activity step(s) failed:`)
    for (const f of failures) log('  -', f)
  } else {
    log('all activity steps succeeded')
  }
  if (lastSeq !== seqCurr) {
    log('WARNING: last received seq differs from the sequencer position')
    process.exitCode = 1
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
