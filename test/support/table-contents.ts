// What a database holds, table by table, for tests that compare a restored database with its source.
import pg from 'pg';

/**
 * Every base table of the schema: its row count and an MD5 over its rows in a fixed order, read in one snapshot.
 * Two databases holding the same rows give the same record, whatever order the rows were written in.
 */
export async function tableContents(databaseUrl: string, schema = 'public'): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    const { rows } = await client.query<{ name: string }>(
      `select table_name as name from information_schema.tables
        where table_schema = $1 and table_type = 'BASE TABLE' order by 1`,
      [schema],
    );
    const contents: Record<string, string> = {};
    for (const { name } of rows) {
      const table = `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
      const result = await client.query<{ n: string; digest: string | null }>(
        `select count(*) as n, md5(string_agg(md5(t::text), '' order by md5(t::text))) as digest from ${table} t`,
      );
      contents[name] = `${result.rows[0]!.n} ${result.rows[0]!.digest ?? '-'}`;
    }
    await client.query('commit');
    return contents;
  } finally {
    await client.end();
  }
}
