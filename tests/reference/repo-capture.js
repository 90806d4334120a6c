'use strict'
// Records reference repositories from a real @atproto/dev-env PDS, for the backfill's tests:
// each account's CAR as com.atproto.sync.getRepo returns it, and what
// com.atproto.repo.listRecords says it holds (every record's path, CID and JSON value) with
// the commit's rev from com.atproto.sync.getLatestCommit.
//
// Output: ../data/repo-<handle>.car for each account, and ../data/repo-expected.jsonl, one line
// per account: {"handle", "did", "rev", "commit", "signingKey", "records": [{"path", "cid",
// "value"}]}, signingKey being the #atproto verification method of its DID document (PLC):
// {"type", "publicKeyMultibase"}, the key that signed the commit.
//
// Usage: node repo-capture.js [OUTDIR]   (default ../data)

const fs = require('node:fs')
const path = require('node:path')
const { TestNetworkNoAppView } = require('@atproto/dev-env')
const { AtpAgent } = require('@atproto/api')

const OUT = process.argv[2] || path.join(__dirname, '..', 'data')
const log = (...args) => console.error('[repo-capture]', ...args)

async function xrpc(base, method, params) {
  const url = new URL(`/xrpc/${method}`, base)
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status} ${await res.text()}`)
  return res
}

async function main() {
  const network = await TestNetworkNoAppView.create({})
  const pds = network.pds.url
  const agents = {}
  for (const name of ['ann', 'ben', 'cal']) {
    const agent = new AtpAgent({ service: pds })
    await agent.createAccount({ handle: `${name}.test`, email: `${name}@example.com`, password: `${name}-pass` })
    agents[name] = agent
  }
  const { ann, ben, cal } = agents
  const did = (a) => a.session.did

  // A profile with a blob, posts in many shapes, likes, follows, reposts; then updates and
  // deletes, so the trees hold what is left, not what was written.
  const png = Buffer.from(
    '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
      '1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5f6e1d40000000049454e44ae426082',
    'hex',
  )
  const blob = (await ann.uploadBlob(png, { encoding: 'image/png' })).data.blob
  await ann.upsertProfile(() => ({ displayName: 'Ann', description: 'first', avatar: blob }))
  await ben.upsertProfile(() => ({ displayName: 'Ben \u00e9\u{1F600}' }))
  const posts = []
  for (let i = 0; i < 40; i++) {
    const who = [ann, ben, cal][i % 3]
    posts.push(await who.post({ text: `post ${i} of the repo capture`, createdAt: new Date().toISOString() }))
  }
  posts.push(await cal.post({ text: 'tab\there "quote" \\ and \u00e9', langs: ['en', 'fr'] }))
  const likes = []
  for (let i = 0; i < 60; i++) {
    const who = [ben, cal, ann][i % 3]
    likes.push(await who.like(posts[i % posts.length].uri, posts[i % posts.length].cid))
  }
  await ann.follow(did(ben))
  const f = await ben.follow(did(cal))
  await cal.follow(did(ann))
  await ben.repost(posts[0].uri, posts[0].cid)
  await cal.com.atproto.repo.createRecord({
    repo: did(cal),
    collection: 'com.example.kitchen.sink',
    rkey: 'sink',
    record: {
      $type: 'com.example.kitchen.sink',
      bytes: { $bytes: 'AAEC/w' },
      link: { $link: posts[1].cid },
      ints: [0, -1, 24, 65536, 9007199254740991],
      nested: [[], {}, [{ a: 'x' }], ''],
      flags: { yes: true, no: false, nothing: null },
    },
  })
  for (let i = 0; i < 60; i += 7) await [ben, cal, ann][i % 3].deleteLike(likes[i].uri)
  await ben.deleteFollow(f.uri)
  await ann.deletePost(posts[3].uri)
  await ann.upsertProfile((p) => ({ ...p, description: 'updated' }))
  await network.processAll()

  const lines = []
  for (const [name, agent] of Object.entries(agents)) {
    const d = did(agent)
    const car = Buffer.from(await (await xrpc(pds, 'com.atproto.sync.getRepo', { did: d })).arrayBuffer())
    fs.writeFileSync(path.join(OUT, `repo-${name}.car`), car)
    const latest = await (await xrpc(pds, 'com.atproto.sync.getLatestCommit', { did: d })).json()
    const described = await (await xrpc(pds, 'com.atproto.repo.describeRepo', { repo: d })).json()
    const records = []
    for (const collection of described.collections) {
      let cursor
      do {
        const params = { repo: d, collection, limit: '100' }
        if (cursor) params.cursor = cursor
        const page = await (await xrpc(pds, 'com.atproto.repo.listRecords', params)).json()
        for (const r of page.records) {
          const rkey = r.uri.split('/').pop()
          records.push({ path: `${collection}/${rkey}`, cid: r.cid, value: r.value })
        }
        cursor = page.records.length ? page.cursor : undefined
      } while (cursor)
    }
    records.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    const doc = await (await fetch(`${network.plc.url}/${encodeURIComponent(d)}`)).json()
    const vm = (doc.verificationMethod || []).find((m) => m.id === '#atproto' || m.id === `${d}#atproto`)
    if (!vm) throw new Error(`${d}: no #atproto key in its DID document`)
    const signingKey = { type: vm.type, publicKeyMultibase: vm.publicKeyMultibase }
    lines.push(JSON.stringify({ handle: `${name}.test`, did: d, rev: latest.rev, commit: latest.cid, signingKey, records }))
    log(`${name}.test: ${records.length} records, ${car.length} bytes of CAR, rev ${latest.rev}`)
  }
  fs.writeFileSync(path.join(OUT, 'repo-expected.jsonl'), lines.join('\n') + '\n')
  await network.close()
}

main().catch((err) => {
  log(err)
  process.exit(1)
})
