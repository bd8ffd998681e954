import { afterEach, describe, expect, it, vi } from 'vitest';
import { settleRevivedSessions } from '../../cli/revived-sessions.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('sessions a restore or recovery revives', () => {
  it('says they come back and how to clear them, for a restore and for a recovery without a database', async () => {
    const printed: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => printed.push(line));

    await settleRevivedSessions({
      databaseUrl: 'postgres://u@127.0.0.1:1/kc',
      schema: 'public',
      clear: false,
      what: 'restore',
      storedWhere: 'in the backup',
    });
    await settleRevivedSessions({
      databaseUrl: undefined,
      schema: 'public',
      clear: true,
      what: 'recovery',
      storedWhere: 'at that time',
    });

    expect(printed).toEqual([
      'note: the restore revives the sessions stored in the backup; pass --clear-sessions to log everyone out',
      'note: the recovery revives the sessions stored at that time; pass --clear-sessions to log everyone out',
    ]);
  });
});
