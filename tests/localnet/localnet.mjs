// The local Bluesky network for Klippfisk's bot tests: PLC + PDS + AppView (and the Ozone
// service dev-env insists on) from @atproto/dev-env, on fixed loopback ports, no mock data.
// Env: KLIPPFISK_LOCALNET_APP (the folder whose node_modules holds @atproto/dev-env),
// READY_FILE (written as JSON once every service answers), DB_POSTGRES_URL, REDIS_HOST
// (required by dev-env, never connected to). SIGTERM/SIGINT close the network.
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const app = process.env.KLIPPFISK_LOCALNET_APP
const readyFile = process.env.READY_FILE
if (!app || !readyFile) throw new Error('KLIPPFISK_LOCALNET_APP and READY_FILE must be set')

const entry = path.join(app, 'node_modules/@atproto/dev-env/dist/index.js')
const { TestNetwork } = await import(pathToFileURL(entry).href)

const started = Date.now()
const network = await TestNetwork.create({
  dbPostgresSchema: 'localnet',
  // The PDS rate limits (createSession 30 / 5 min per handle, write points) are off unless
  // asked for, so that tests can log in freely; the bot's own limits are what is tested.
  pds: { port: 2583, hostname: 'localhost', enableDidDocWithSession: true, rateLimitsEnabled: false },
  bsky: { port: 2584, publicUrl: 'http://localhost:2584' },
  plc: { port: 2582 },
  ozone: { port: 2587, chatUrl: 'http://localhost:2590', chatDid: 'did:example:chat' },
})

fs.writeFileSync(
  readyFile,
  JSON.stringify({
    pid: process.pid,
    startup_ms: Date.now() - started,
    plc: network.plc.url,
    pds: network.pds.url,
    appview: network.bsky.url,
    handle_domains: network.pds.ctx.cfg.identity.serviceHandleDomains,
  }) + '\n',
)

let closing = false
async function shutdown() {
  if (closing) return
  closing = true
  try {
    await network.close()
  } finally {
    fs.rmSync(readyFile, { force: true })
    process.exit(0)
  }
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
