'use strict'
// End-to-end check of atkv-builder against the reference PDS (driven by
// tests/test-pds.sh).
//
// Usage: node pds-e2e.js NATS_URL
//
// Protocol on stdout (one line each; everything else goes to stderr):
//   {"pds": "ws://localhost:PORT", "http", "plc", "ready": true}    network up
//   <- "go"       from stdin: the builder is started; drive the activity
//   {"done": true, "lastSeq": N, "failures": [...]}  activity finished
//   <- "check"    from stdin: wait for the builder's cursor (up to 30 s),
//                 then compare every record of the PDS with bucket `record`
//   ok N - ... / not ok N - ... / # ...             TAP lines (no plan)
//   {"checked": true}
//   <- "likes"    write each account's expected likes into $ATKV_LIKES_DIR
//   {"likes": N}
//   <- "backfilled NATS_URL"   compare the PDS with the store atkv-backfill
//                 filled at NATS_URL (no cursor there): TAP lines, {"checked": true}
//   <- "tamper"   start a relay in front of the PDS's firehose that alters it
//                 as a hostile relay might (see tamperingRelay)
//   {"tamper": "ws://127.0.0.1:PORT", "victims": N}
//   <- "stop" (or end of stdin)   close the network and exit 0
// A fatal error prints {"error": "..."} and exits 1. Everything runs on
// loopback. TMPDIR should point at a private directory (the PDS keeps its
// databases and blobs there).

const readline = require('node:readline')
const util = require('node:util')
const { TestNetworkNoAppView } = require('@atproto/dev-env')
const { AtpAgent } = require('@atproto/api')
const { connect } = require('nats')
const murmur = require('murmurhash')
const WebSocket = require('ws')
const { cborDecodeMulti, cborDecode, cborEncode, cidForCbor } = require('@atproto/common')
const { readCarWithRoot, blocksToCarFile } = require('@atproto/repo')

const NATS_URL = process.argv[2]
const CURSOR_WAIT_MS = 30000
const OVERALL_TIMEOUT_MS = 15 * 60 * 1000

// protocol goes to stdout; library chatter must not
const out = (line) => process.stdout.write(line + '\n')
const log = (...args) => console.error('[pds-e2e]', ...args)
console.log = console.error
console.info = console.error

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ---- stdin lines ----
const lines = []
let stdinEnded = false
let lineWaiter = null
readline
  .createInterface({ input: process.stdin, terminal: false })
  .on('line', (l) => {
    lines.push(l.trim())
    if (lineWaiter) lineWaiter()
  })
  .on('close', () => {
    stdinEnded = true
    if (lineWaiter) lineWaiter()
  })

// Resolves true when `want` arrives, false on end of stdin.
async function waitLine(want) {
  for (;;) {
    while (lines.length) if (lines.shift() === want) return true
    if (stdinEnded) return false
    await new Promise((r) => (lineWaiter = r))
    lineWaiter = null
  }
}

// The next line, or null at the end of stdin.
async function nextLine() {
  for (;;) {
    if (lines.length) return lines.shift()
    if (stdinEnded) return null
    await new Promise((r) => (lineWaiter = r))
    lineWaiter = null
  }
}

// ---- the DESIGN.md record key ----
function escapeToken(s) {
  let r = ''
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b)
    if (/[A-Za-z0-9_=/-]/.test(c)) r += c
    else r += '/' + b.toString(16).toUpperCase().padStart(2, '0')
  }
  return r
}
function partitionOf(did) {
  return murmur.v3(did).toString(16).padStart(2, '0').slice(0, 1)
}
function recordKey(did, collection, rkey) {
  return [
    partitionOf(did),
    ...collection.split('.').map(escapeToken),
    escapeToken(did),
    escapeToken(rkey),
  ].join('.')
}
function parseAtUri(uri) {
  const m = /^at:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri)
  if (!m) throw new Error(`bad AT-URI ${uri}`)
  return { did: m[1], collection: m[2], rkey: m[3] }
}

// a 2×2 RGB PNG
const AVATAR_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGM4IRcFRAwQCgAkxgUBBHQ3qwAAAABJRU5ErkJggg==',
  'base64',
)

// ---- activity ----
async function drive(pdsUrl) {
  const failures = []
  const deleted = [] // AT-URIs of records deleted again
  const step = async (name, fn) => {
    try {
      return await fn()
    } catch (err) {
      failures.push(`${name}: ${err && err.message ? err.message : err}`)
      log('FAILED', name, err)
      return undefined
    }
  }

  const names = ['alice', 'bob', 'carol']
  const a = {}
  for (const name of names) {
    await step(`createAccount ${name}`, async () => {
      const agent = new AtpAgent({ service: pdsUrl })
      await agent.createAccount({
        handle: `${name}.test`,
        email: `${name}@example.com`,
        password: `${name}-pass-e2e`,
      })
      a[name] = agent
    })
  }
  if (names.some((n) => !a[n])) return { failures, deleted, agents: a, likes: [] }
  const did = (n) => a[n].session.did

  // profiles
  await step('profile create alice', () =>
    a.alice.upsertProfile(() => ({ displayName: 'Alice', description: 'plain bio' })),
  )
  await step('profile create bob', () =>
    a.bob.upsertProfile(() => ({
      displayName: 'Bob 🐝',
      description: 'Ünïcödé bio — 日本語テキスト\nsecond line',
    })),
  )

  // posts
  const posts = []
  const post = (n, record) =>
    step(`post by ${n}`, async () => {
      const res = await a[n].post(record)
      posts.push({ owner: n, ...res })
      return res
    })
  await post('alice', { text: 'Hello, firehose!' })
  await post('bob', {
    text: 'héllo wörld 🌍🚀 — 日本語 中文 한국어 עברית العربية 👩‍👩‍👧‍👦 🇫🇷 e\u0301 "quotes" \\ backslash \ttab',
    langs: ['en', 'ja'],
  })
  await post('carol', { text: 'carol: ∀x∈ℝ, x² ≥ 0 — ça va? 🙂' })
  for (let i = 0; i < 4; i++) {
    await post(names[i % 3], { text: `filler post ${i}` })
  }
  if (posts[2]) {
    await post('alice', {
      text: 'a reply to carol',
      reply: {
        root: { uri: posts[2].uri, cid: posts[2].cid },
        parent: { uri: posts[2].uri, cid: posts[2].cid },
      },
    })
  }

  // follows: everyone follows everyone, then one unfollow
  const follows = []
  for (const x of names)
    for (const y of names)
      if (x !== y)
        await step(`follow ${x}->${y}`, async () => {
          follows.push({ owner: x, ...(await a[x].follow(did(y))) })
        })
  if (follows[0])
    await step('unfollow', async () => {
      await a[follows[0].owner].deleteFollow(follows[0].uri)
      deleted.push(follows[0].uri)
    })

  // likes: everyone likes every post of the others, then some unlikes
  const likes = []
  for (const n of names)
    for (const p of posts)
      if (p.owner !== n)
        await step(`like ${n}`, async () => {
          likes.push({ owner: n, ...(await a[n].like(p.uri, p.cid)) })
        })
  for (const i of [0, 4, 9]) {
    const l = likes[i]
    if (!l) continue
    await step(`unlike ${i}`, async () => {
      await a[l.owner].deleteLike(l.uri)
      deleted.push(l.uri)
    })
  }

  // a repost, and one reposted and undone
  if (posts[1]) {
    await step('repost', () => a.carol.repost(posts[1].uri, posts[1].cid))
    await step('repost + unrepost', async () => {
      const r = await a.alice.repost(posts[1].uri, posts[1].cid)
      await a.alice.deleteRepost(r.uri)
      deleted.push(r.uri)
    })
  }

  // profile updates, one with an avatar blob
  await step('profile update alice (avatar)', async () => {
    const up = await a.alice.uploadBlob(AVATAR_PNG, { encoding: 'image/png' })
    await a.alice.upsertProfile((existing) => ({
      ...existing,
      displayName: 'Alice Liddell',
      description: 'Updated bio 📝 with avatar',
      avatar: up.data.blob,
    }))
  })
  await step('profile update bob', () =>
    a.bob.upsertProfile((existing) => ({ ...existing, description: 'Bob changed his bio' })),
  )

  // a post that is deleted again
  await step('post + delete', async () => {
    const p = await a.bob.post({ text: 'this post will be deleted' })
    await a.bob.deletePost(p.uri)
    deleted.push(p.uri)
  })

  // one applyWrites commit with creates, an update and a delete
  await step('applyWrites batch', async () => {
    const repo = did('carol')
    const toUpdate = await a.carol.post({ text: 'to be updated in a batch' })
    const toDelete = await a.carol.post({ text: 'to be deleted in a batch' })
    const rkeyOf = (uri) => parseAtUri(uri).rkey
    const now = new Date().toISOString()
    const writes = []
    for (let i = 0; i < 3; i++)
      writes.push({
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: `batch post ${i} ✨`, createdAt: now },
      })
    if (posts[0])
      writes.push({
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.like',
        value: {
          $type: 'app.bsky.feed.like',
          subject: { uri: posts[0].uri, cid: posts[0].cid },
          createdAt: now,
        },
      })
    writes.push({
      $type: 'com.atproto.repo.applyWrites#update',
      collection: 'app.bsky.feed.post',
      rkey: rkeyOf(toUpdate.uri),
      value: { $type: 'app.bsky.feed.post', text: 'updated in a batch', createdAt: now },
    })
    writes.push({
      $type: 'com.atproto.repo.applyWrites#delete',
      collection: 'app.bsky.feed.post',
      rkey: rkeyOf(toDelete.uri),
    })
    await a.carol.com.atproto.repo.applyWrites({ repo, writes })
    deleted.push(toDelete.uri)
  })

  // a non-Bluesky record: bytes, a link, integers, null, and an rkey that
  // needs escaping in the KV key
  await step('custom collection record', () =>
    a.bob.com.atproto.repo.createRecord({
      repo: did('bob'),
      collection: 'com.example.atkv.sample',
      rkey: '3k:ab~c.d',
      validate: false,
      record: {
        $type: 'com.example.atkv.sample',
        bytes: { $bytes: 'AAECAwT/+w' },
        link: posts[0] ? { $link: posts[0].cid } : null,
        ints: [0, -1, 255, 65536, 9007199254740991],
        flags: { yes: true, no: false, nothing: null },
        text: 'tab\there "quote" \\ é😀',
        createdAt: new Date().toISOString(),
      },
    }),
  )
  return { failures, deleted, agents: a, likes }
}

// Writes, updates and deletes spread over several seconds while atkv-backfill reads the same
// repositories: posts, and likes of them by another account; every third round a record of
// the churn deleted again, every fourth a like made before the churn (a record a backfill may
// have fetched already: it must not come back), every fifth a profile update.
async function churn(activity, rounds) {
  const a = activity.agents
  const names = Object.keys(a)
  const step = async (name, fn) => {
    try {
      return await fn()
    } catch (err) {
      activity.failures.push(`churn ${name}: ${err && err.message ? err.message : err}`)
      return undefined
    }
  }
  const made = []
  const older = activity.likes.filter((l) => !activity.deleted.includes(l.uri))
  for (let i = 0; i < rounds; i++) {
    const n = names[i % names.length]
    const other = names[(i + 1) % names.length]
    const p = await step(`post ${i}`, () => a[n].post({ text: `churn post ${i}` }))
    if (p) {
      made.push({ owner: n, uri: p.uri, like: false })
      const l = await step(`like ${i}`, () => a[other].like(p.uri, p.cid))
      if (l) made.push({ owner: other, uri: l.uri, like: true })
    }
    if (i % 3 === 2 && made.length > 2) {
      const m = made.shift()
      await step(`delete ${i}`, () => (m.like ? a[m.owner].deleteLike(m.uri) : a[m.owner].deletePost(m.uri)))
      activity.deleted.push(m.uri)
    }
    if (i % 4 === 1 && older.length) {
      const l = older.shift()
      await step(`unlike ${i}`, () => a[l.owner].deleteLike(l.uri))
      activity.deleted.push(l.uri)
    }
    if (i % 5 === 4)
      await step(`profile ${i}`, () => a[n].upsertProfile((e) => ({ ...e, description: `churn ${i}` })))
    await sleep(20)
  }
}

// ---- checks ----
async function xrpc(pdsUrl, method, params) {
  const u = new URL(`/xrpc/${method}`, pdsUrl)
  for (const [k, v] of Object.entries(params || {}))
    if (v !== undefined) u.searchParams.set(k, String(v))
  const res = await fetch(u, { signal: AbortSignal.timeout(20000) })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status} ${text}`)
  return JSON.parse(text)
}

async function paginate(fn) {
  const items = []
  let cursor
  for (let i = 0; i < 10000; i++) {
    const page = await fn(cursor)
    items.push(...page.items)
    if (!page.cursor || page.items.length === 0) break
    cursor = page.cursor
  }
  return items
}

const canon = (v) => JSON.parse(JSON.stringify(v))
const decoder = new TextDecoder()

let tapCount = 0
const tap = (ok, desc) => out(`${ok ? 'ok' : 'not ok'} ${++tapCount} - ${desc}`)
const diag = (msg) => out(`# ${String(msg).replace(/\n/g, '\n# ')}`)

// lastSeq null: a store filled by atkv-backfill, which keeps no cursor.
async function check(pdsUrl, lastSeq, activity, natsUrl = NATS_URL) {

  tap(activity.failures.length === 0, 'activity: every step succeeded')
  for (const f of activity.failures) diag(f)

  const nc = await connect({ servers: natsUrl, timeout: 5000, maxReconnectAttempts: 3 })
  try {
    const js = nc.jetstream()

    // the cursor reaches the PDS's last seq
    let cursor = null
    if (lastSeq !== null) {
      const deadline = Date.now() + CURSOR_WAIT_MS
      for (;;) {
        try {
          const kvc = await js.views.kv('cursor', { bindOnly: true })
          const e = await kvc.get('firehose')
          if (e && e.operation === 'PUT') cursor = Number(decoder.decode(e.value))
        } catch (err) {
          if (Date.now() >= deadline) diag(`cursor: ${err.message}`)
        }
        if ((cursor !== null && cursor >= lastSeq) || Date.now() >= deadline) break
        await sleep(200)
      }
      tap(cursor !== null && cursor >= lastSeq, `cursor firehose (${cursor}) >= PDS last seq (${lastSeq})`)
      // every resynchronization the builder was asked for is done, its note removed
      const jsm = await nc.jetstreamManager()
      const si = await jsm.streams.info('KV_cursor', { subjects_filter: '$KV.cursor.resync.>' })
      const owed = Object.keys(si.state.subjects || {})
      tap(owed.length === 0, `bucket cursor notes no resynchronization owed (${owed.join(' ') || 'none'})`)
    }

    const kv = await js.views.kv('record', { bindOnly: true })

    // every record of every repo and collection is in the bucket, equal
    const expected = new Set()
    const repos = await paginate(async (c) => {
      const r = await xrpc(pdsUrl, 'com.atproto.sync.listRepos', { limit: 100, cursor: c })
      return { items: r.repos, cursor: r.cursor }
    })
    tap(repos.length === 3, `listRepos: ${repos.length} repos (3 expected)`)
    let total = 0
    for (const repo of repos) {
      const desc = await xrpc(pdsUrl, 'com.atproto.repo.describeRepo', { repo: repo.did })
      for (const collection of desc.collections) {
        const records = await paginate(async (c) => {
          const r = await xrpc(pdsUrl, 'com.atproto.repo.listRecords', {
            repo: repo.did,
            collection,
            limit: 100,
            cursor: c,
          })
          return { items: r.records, cursor: r.cursor }
        })
        let bad = 0
        for (const rec of records) {
          const { did, rkey } = parseAtUri(rec.uri)
          const key = recordKey(did, collection, rkey)
          expected.add(key)
          const e = await kv.get(key)
          if (!e || e.operation !== 'PUT') {
            if (bad++ < 5) diag(`missing: ${rec.uri} (key ${key}${e ? ', ' + e.operation : ''})`)
            continue
          }
          let got
          try {
            got = JSON.parse(decoder.decode(e.value))
          } catch (err) {
            if (bad++ < 5) diag(`not JSON: ${key}: ${err.message}`)
            continue
          }
          if (!util.isDeepStrictEqual(canon(got), canon(rec.value))) {
            if (bad++ < 5) {
              diag(`differs: ${rec.uri} (key ${key})`)
              diag(`  kv:  ${JSON.stringify(got)}`)
              diag(`  pds: ${JSON.stringify(rec.value)}`)
            }
          }
        }
        total += records.length
        tap(
          bad === 0 && records.length > 0,
          `${desc.handle} ${collection}: ${records.length - bad}/${records.length} records match`,
        )
      }
    }

    // no key in the bucket without a record on the PDS
    const extra = []
    let keys = 0
    for await (const k of await kv.keys()) {
      keys++
      if (!expected.has(k)) extra.push(k)
    }
    for (const k of extra.slice(0, 10)) diag(`extra key: ${k}`)
    tap(extra.length === 0 && keys === total, `bucket record: ${keys} keys, ${total} records, ${extra.length} extra`)

    // deleted records: the latest entry is a delete (or nothing)
    let notDeleted = 0
    for (const uri of activity.deleted) {
      const { did, collection, rkey } = parseAtUri(uri)
      const key = recordKey(did, collection, rkey)
      const e = await kv.get(key)
      if (e && e.operation !== 'DEL' && e.operation !== 'PURGE') {
        notDeleted++
        diag(`still present: ${uri} (key ${key}, ${e.operation})`)
      }
    }
    tap(
      notDeleted === 0 && activity.deleted.length >= 6,
      `${activity.deleted.length} deleted records absent from bucket record`,
    )
  } finally {
    await nc.close()
  }
}

// Each repository's head in bucket repo is where the PDS is: its rev, synced; the head
// atkv-backfill leaves has seq -1 and claims no collections (the store may hold more than the
// snapshot); a builder's head that lists them may list collections emptied since, never fewer.
async function checkHeads(pdsUrl, natsUrl, backfilled) {
  const nc = await connect({ servers: natsUrl, timeout: 5000, maxReconnectAttempts: 3 })
  try {
    const kv = await nc.jetstream().views.kv('repo', { bindOnly: true })
    const repos = await paginate(async (c) => {
      const r = await xrpc(pdsUrl, 'com.atproto.sync.listRepos', { limit: 100, cursor: c })
      return { items: r.repos, cursor: r.cursor }
    })
    for (const repo of repos) {
      const desc = await xrpc(pdsUrl, 'com.atproto.repo.describeRepo', { repo: repo.did })
      const e = await kv.get(escapeToken(repo.did))
      const head = e && e.operation === 'PUT' ? JSON.parse(decoder.decode(e.value)) : null
      const listed = head && Array.isArray(head.collections) ? head.collections : []
      const missing = desc.collections.filter((c) => !listed.includes(c))
      const ok =
        head !== null &&
        head.rev === repo.rev &&
        head.status === 'synced' &&
        typeof head.data === 'string' &&
        head.data.length > 0 &&
        (!backfilled || (head.seq === -1 && !Array.isArray(head.collections))) &&
        (backfilled || !Array.isArray(head.collections) || missing.length === 0)
      const lists = head && Array.isArray(head.collections) ? `${listed.length} collections listed` : 'no collections claimed'
      tap(ok, `${desc.handle}: head ${head ? `${head.status} at rev ${head.rev}, seq ${head.seq}` : 'missing'} ` +
        `(PDS ${repo.rev}), ${lists} (${desc.collections.length} on the PDS)`)
      if (!ok) diag(`head of ${repo.did}: ${JSON.stringify(head)}`)
    }
  } finally {
    await nc.close()
  }
}

// KV_record holds exactly one message per key: no record was written twice.
async function checkOnce(natsUrl) {
  const nc = await connect({ servers: natsUrl, timeout: 5000, maxReconnectAttempts: 3 })
  try {
    const jsm = await nc.jetstreamManager()
    const info = await jsm.streams.info('KV_record')
    const kv = await nc.jetstream().views.kv('record', { bindOnly: true })
    let keys = 0
    for await (const k of await kv.keys()) if (k) keys++
    tap(info.state.messages === keys, `KV_record: ${info.state.messages} messages for ${keys} keys (each written once)`)
  } finally {
    await nc.close()
  }
}

// What atkv-get-likes-by must print for each account: the subjects of its like records on the
// PDS, newest like first (by record key, a TID, compared bytewise as SQLite does), one file per
// DID in dir. Returns how many accounts there are.
async function writeExpectedLikes(pdsUrl, dir) {
  const repos = await paginate(async (c) => {
    const r = await xrpc(pdsUrl, 'com.atproto.sync.listRepos', { limit: 100, cursor: c })
    return { items: r.repos, cursor: r.cursor }
  })
  const cmp = (x, y) => (x < y ? -1 : x > y ? 1 : 0)
  for (const repo of repos) {
    const records = await paginate(async (c) => {
      const r = await xrpc(pdsUrl, 'com.atproto.repo.listRecords', {
        repo: repo.did,
        collection: 'app.bsky.feed.like',
        limit: 100,
        cursor: c,
      })
      return { items: r.records, cursor: r.cursor }
    })
    records.sort((a, b) => cmp(parseAtUri(b.uri).rkey, parseAtUri(a.uri).rkey))
    const text = records.map((r) => r.value.subject.uri + '\n').join('')
    require('node:fs').writeFileSync(`${dir}/${repo.did}.txt`, text)
  }
  return repos.length
}

const withTimeout = (p, ms, what) =>
  Promise.race([
    p,
    new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms).unref()),
  ])

// An account with records, deleted by the PDS's administrator: its #account event says
// "deleted", and every record of it must leave the store. Returns its DID.
async function deleteAnAccount(network, pdsUrl, activity) {
  const agent = new AtpAgent({ service: pdsUrl })
  await agent.createAccount({ handle: 'dave.test', email: 'dave@example.com', password: 'dave-pass-e2e' })
  const did = agent.session.did
  const p = await agent.post({ text: 'dave was here' })
  await agent.like(p.uri, p.cid)
  const last = await agent.follow(activity.agents.alice.session.did)
  // The PDS drops a deleted account's events it has not sent yet: wait until the builder has
  // stored the last of them.
  const { rkey } = parseAtUri(last.uri)
  const nc = await connect({ servers: NATS_URL, timeout: 5000, maxReconnectAttempts: 3 })
  try {
    const kv = await nc.jetstream().views.kv('record', { bindOnly: true })
    const key = recordKey(did, 'app.bsky.graph.follow', rkey)
    for (let i = 0; i < 300 && !(await kv.get(key)); i++) await sleep(100)
  } finally {
    await nc.close()
  }
  await agent.com.atproto.admin.deleteAccount(
    { did },
    { headers: network.pds.adminAuthHeaders(), encoding: 'application/json' },
  )
  return did
}

// A relay in front of the PDS's firehose that alters commits of its victims (victims[DID]: the
// alterations, made to its 3rd commit seen, then each to the first commit of it 2 s or more
// after the one before, when the client has resynchronized it; the same seq again when a client
// reconnects): "prevData" points it at another tree, "record" changes a record it creates and
// recomputes that record's CID (the signed tree still names the old one), "sig" puts another
// account's signature in its commit (its CID recomputed), "drop" leaves it out (the next
// commit's prevData then names a tree the client never saw). The rest passes as it came.
function tamperingRelay(pdsPort, victims) {
  const seen = new Map() // DID -> seqs of its commits seen
  const plan = new Map() // seq -> alteration
  const sigs = new Map() // DID -> the signature of its last commit seen
  const decide = (body) => {
    const kinds = victims[body.repo] || []
    const seqs = seen.get(body.repo) || new Set()
    seen.set(body.repo, seqs)
    seqs.add(body.seq)
    const mine = [...plan.values()].filter((p) => p.did === body.repo)
    const kind = kinds[mine.length]
    if (!kind || plan.has(body.seq) || seqs.size < 3) return
    if (mine.length && Date.now() - mine[mine.length - 1].at < 2000) return
    if (kind === 'record' && !body.ops.some((op) => op.action === 'create' && op.cid)) return
    if (kind === 'sig' && ![...sigs.keys()].some((d) => d !== body.repo)) return
    plan.set(body.seq, { did: body.repo, kind, at: Date.now() })
    log('tampering relay:', kind, 'at seq', body.seq, 'of', body.repo)
  }
  const alter = async (frame) => {
    const [header, body] = cborDecodeMulti(frame)
    if (header.t !== '#commit') return frame
    const car = await readCarWithRoot(body.blocks)
    const commit = cborDecode(car.blocks.get(body.commit))
    decide(body)
    sigs.set(body.repo, commit.sig)
    const p = plan.get(body.seq)
    if (!p) return frame
    if (p.kind === 'drop') return null
    if (p.kind === 'prevData') body.prevData = body.commit
    if (p.kind === 'sig') {
      commit.sig = sigs.get([...sigs.keys()].find((d) => d !== body.repo))
      const cid = await cidForCbor(commit)
      car.blocks.set(cid, cborEncode(commit))
      body.commit = cid
      body.blocks = await blocksToCarFile(cid, car.blocks)
    }
    if (p.kind === 'record') {
      const op = body.ops.find((o) => o.action === 'create' && o.cid)
      const { root, blocks } = await readCarWithRoot(body.blocks)
      const record = cborDecode(blocks.get(op.cid))
      record.createdAt = '2001-01-01T00:00:00.000Z'
      const cid = await cidForCbor(record)
      blocks.set(cid, cborEncode(record))
      op.cid = cid
      body.blocks = await blocksToCarFile(root, blocks)
    }
    return Buffer.concat([cborEncode(header), cborEncode(body)])
  }
  const server = new WebSocket.Server({ host: '127.0.0.1', port: 0 })
  server.on('connection', (client, req) => {
    const search = new URL(req.url, 'http://relay').search
    const upstream = new WebSocket(`ws://localhost:${pdsPort}/xrpc/com.atproto.sync.subscribeRepos${search}`)
    let order = Promise.resolve() // frames leave in the order they came
    upstream.on('message', (data) => {
      order = order
        .then(() => alter(Buffer.from(data)))
        .then((out) => {
          if (out && client.readyState === WebSocket.OPEN) client.send(out)
        })
        .catch((err) => log('tampering relay:', err))
    })
    upstream.on('close', () => client.close())
    upstream.on('error', (err) => log('tampering relay upstream:', err.message))
    client.on('close', () => upstream.close())
    client.on('error', () => upstream.close())
  })
  return new Promise((resolve) => server.on('listening', () => resolve(server)))
}

async function main() {
  if (!NATS_URL) throw new Error('usage: node pds-e2e.js NATS_URL')
  const network = await withTimeout(TestNetworkNoAppView.create({}), 120000, 'starting the network')
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await withTimeout(network.close(), 20000, 'closing the network').catch((e) => log(e.message))
  }
  try {
    const port = network.pds.port
    const pdsUrl = network.pds.url
    log('PDS at', pdsUrl)
    out(JSON.stringify({ pds: `ws://localhost:${port}`, http: pdsUrl, plc: network.plc.url, ready: true }))

    if (!(await waitLine('go'))) return
    // the builder's subscription is registered with the sequencer: from
    // here on it sees every event
    const seq = network.pds.ctx.sequencer
    for (let i = 0; i < 200 && seq.listenerCount('events') === 0; i++) await sleep(100)
    log('firehose subscribers:', seq.listenerCount('events'))

    const activity = await drive(pdsUrl)
    try {
      activity.deletedDid = await deleteAnAccount(network, pdsUrl, activity)
    } catch (err) {
      activity.failures.push(`deleteAccount: ${err && err.message ? err.message : err}`)
      log('FAILED deleteAccount', err)
    }
    await network.processAll()
    const lastSeq = (await seq.curr()) || 0
    out(JSON.stringify({ done: true, lastSeq, deleted: activity.deletedDid || '', failures: activity.failures }))

    if (!(await waitLine('check'))) return
    try {
      await check(pdsUrl, lastSeq, activity)
    } catch (err) {
      tap(false, `check aborted: ${String(err && err.message ? err.message : err).replace(/\n/g, ' ')}`)
    }
    out(JSON.stringify({ checked: true }))

    if (!(await waitLine('likes'))) return
    let accounts = 0
    try {
      accounts = await writeExpectedLikes(pdsUrl, process.env.ATKV_LIKES_DIR)
    } catch (err) {
      tap(false, `likes aborted: ${String(err && err.message ? err.message : err).replace(/\n/g, ' ')}`)
    }
    out(JSON.stringify({ likes: accounts }))

    // "backfilled NATS_URL [once]": the store atkv-backfill filled there, compared the same
    // way (once: and KV_record holds one message per key, nothing written twice); "heads
    // NATS_URL [backfilled]": the store's heads in bucket repo are the PDS's;
    // "churn": writes, updates and deletes for several seconds ("churning" first, "churned"
    // with the last seq at the end); "checklive NATS_URL SEQ": a store a builder keeps,
    // compared once its cursor reaches SEQ; "likes": each account's likes written again.
    for (;;) {
      const l = await nextLine()
      if (l === null || l === 'stop') break
      const [cmd, url, arg] = l.split(' ')
      try {
        if (cmd === 'backfilled' || cmd === 'checklive') {
          await check(pdsUrl, cmd === 'checklive' ? Number(arg) : null, activity, url)
          if (arg === 'once') await checkOnce(url)
          out(JSON.stringify({ checked: true }))
        } else if (cmd === 'heads') {
          await checkHeads(pdsUrl, url, arg === 'backfilled')
          out(JSON.stringify({ checked: true }))
        } else if (cmd === 'churn') {
          out(JSON.stringify({ churning: true }))
          await churn(activity, 60)
          await network.processAll()
          out(JSON.stringify({ churned: true, lastSeq: (await seq.curr()) || 0 }))
        } else if (cmd === 'likes') {
          out(JSON.stringify({ likes: await writeExpectedLikes(pdsUrl, process.env.ATKV_LIKES_DIR) }))
        } else if (cmd === 'tamper') {
          const d = (n) => activity.agents[n].session.did
          const victims = { [d('alice')]: ['prevData', 'sig'], [d('bob')]: ['record'], [d('carol')]: ['drop'] }
          const relay = await tamperingRelay(port, victims)
          out(JSON.stringify({ tamper: `ws://127.0.0.1:${relay.address().port}`, alterations: 4 }))
        }
      } catch (err) {
        tap(false, `${cmd} aborted: ${String(err && err.message ? err.message : err).replace(/\n/g, ' ')}`)
        out(JSON.stringify({ checked: true, churned: true, likes: 0, lastSeq: 0 }))
      }
    }
  } finally {
    await close()
  }
}

const watchdog = setTimeout(() => {
  out(JSON.stringify({ error: 'pds-e2e.js: overall timeout' }))
  process.exit(1)
}, OVERALL_TIMEOUT_MS)

main().then(
  () => {
    clearTimeout(watchdog)
    process.exit(0)
  },
  (err) => {
    log(err)
    out(JSON.stringify({ error: String(err && err.message ? err.message : err) }))
    process.exit(1)
  },
)
