/** The state file cannot be read or written: stops the cycle before any SCIM write (exit 1), naming state.path. */
export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}
