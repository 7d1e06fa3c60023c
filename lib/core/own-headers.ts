// The header names litefs-proxy gives a meaning, in one place: each module
// that sends or reads one re-exports its own from here, and options.ts refuses
// every one of them as `tokenHeader` (a token written into `litefs-stale` made
// an answer carry that header twice).

/** The header a read served past its timeout carries: the TXID it waited for and the position it got. */
export const STALE_HEADER = 'litefs-stale'

/**
 * Marks litefs-proxy's own question to a primary's health, its value the
 * asking node's marker entry (loop-guard.ts): a node asked so answers from
 * what it knows without asking on, and a node asked by itself answers 508 (a
 * `primaryUrl` that maps to the node itself must neither wait for its own
 * answer nor count as the primary reached).
 */
export const REACH_HEADER = 'litefs-proxy-reach'

/** The header carrying a report's signature: `<unix ms>.<base64url HMAC-SHA256(secret, "<unix ms>\n<body>")>`. */
export const PEER_HEADER = 'litefs-peer'

/**
 * Sent with the question: a primary tracking `'*'` lists its mount afresh
 * before it answers (health.ts), so every database that existed when it was
 * asked is in its answer, and one missing from it is one it does not have.
 */
export const PROBE_HEADER = 'litefs-proxy-probe'

/** The header a forwarding node adds; a node that is not primary never forwards a request carrying it. */
export const FORWARDED_HEADER = 'litefs-forwarded'

/**
 * Beside the marker: how long (ms) the forwarding node waits for the answer's
 * head once the request is sent (its `forwardTimeout`). A node that holds the
 * request answers within it (write-path.ts), so the forwarder relays a clear
 * "nothing was applied" rather than timing out on a write whose fate it cannot know.
 */
export const BUDGET_HEADER = 'litefs-forward-budget'

/**
 * On a closing primary's answers to its peers (last-answer.ts): it is about to
 * stop listening, so a replica holds its next writes for it rather than open a
 * connection into its closing (primary-closing.ts). Between litefs-proxies
 * only: stripped on the way to the client.
 */
export const CLOSING_HEADER = 'litefs-proxy-closing'

/** Every header above: refused as `tokenHeader` (options.ts). */
export const OWN_HEADERS: readonly string[] = [STALE_HEADER, REACH_HEADER, PEER_HEADER, PROBE_HEADER, FORWARDED_HEADER, BUDGET_HEADER, CLOSING_HEADER]
