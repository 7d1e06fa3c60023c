import type { MountFiles } from './mount-files.js'

// LiteFS's API (`api`) and its mount (`mount`) must be one node's: its
// http.addr and its fuse.dir. Given the primary's API and a replica's mount
// (two nodes on one host, a copied setting), the API says "primary" and writes
// would be served here — into a read-only replica's mount, the app answering
// 500 and the answer cookied with the replica's position. What each says about
// the node can disagree in two ways that never happen on one node: the API
// says this node is the primary while the mount has `.primary` (only a
// replica's mount has it), or they name two different primaries. Checked when
// LiteFS says who is primary (a subscription, a primaryChange), one small read.

/** Why `api` and `mount` cannot be one node's, given what the API just said; undefined when they agree. */
export function disagreement (files: MountFiles, api: string, mount: string, isPrimary: boolean, hostname: string | undefined): string | undefined {
  const named = files.readPrimary()
  if (named === undefined) return undefined
  if (isPrimary) {
    return `LiteFS's API at ${api} says this node is the primary, but the mount ${mount} is a replica's (its .primary names ${named}): "api" and "mount" are two nodes'`
  }
  if (hostname !== undefined && hostname !== named) {
    return `LiteFS's API at ${api} says the primary is ${hostname}, but the mount ${mount} says ${named}: "api" and "mount" are two nodes'`
  }
  return undefined
}
