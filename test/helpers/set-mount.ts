import type { StateDriver } from '../../lib/core/node-state.js'

/** A mount whose position and liveness a test sets: a NodeState driver (commit-check.test.ts, sidecar-token.test.ts). */
export class SetMount implements StateDriver {
  pos: bigint | undefined = 5n
  answers = true
  readPosition = (): bigint | undefined => this.pos
  readPositionAsync = async (): Promise<bigint | undefined> => this.pos
  readLag = (): number => 0
  mountAnswers = (): boolean => this.answers
}
