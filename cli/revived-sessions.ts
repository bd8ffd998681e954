// What a restore or a recovery says about the Keycloak sessions it brings back: cleared when asked, else a note.
import { clearSessions } from '../functions/adapters/postgres/restore-target.js';

export async function settleRevivedSessions(options: {
  /** The restored database; without one there is nothing to clear, and the note is printed. */
  databaseUrl: string | undefined;
  schema: string;
  clear: boolean | undefined;
  /** "restore" or "recovery", and where its sessions come from ("in the backup", "at that time"). */
  what: string;
  storedWhere: string;
}): Promise<void> {
  if (options.clear && options.databaseUrl) {
    const cleared = await clearSessions(options.databaseUrl, options.schema);
    console.log(
      `cleared ${cleared.userSessions} user sessions and ${cleared.clientSessions} client sessions revived by the ${options.what}`,
    );
  } else {
    console.log(
      `note: the ${options.what} revives the sessions stored ${options.storedWhere}; pass --clear-sessions to log everyone out`,
    );
  }
}
