// Disables realm key components in a restored database the way the admin console does: enabled=false, never deleted.
import { randomUUID } from 'node:crypto';
import { InvalidInputError } from '../../core/errors.js';
import { KEY_PROVIDER_TYPE } from '../../core/keycloak/index.js';
import { withClient } from './connect.js';
import { quoteIdent } from './keycloak-probe.js';

/**
 * Sets `enabled` to false on each key component, in one transaction: the existing config row is updated, or one is
 * added (generated keys store no `enabled` row, which means true). A component that is not a key provider of this
 * database is refused before anything changes. Returns how many config rows were added (the rest were updated).
 */
export async function disableKeyComponents(
  databaseUrl: string,
  schema: string,
  componentIds: readonly string[],
): Promise<number> {
  if (componentIds.length === 0) return 0;
  const component = `${quoteIdent(schema)}.component`;
  const config = `${quoteIdent(schema)}.component_config`;
  return withClient(databaseUrl, async (client) => {
    await client.query('begin');
    try {
      const { rows } = await client.query<{ id: string }>(
        `select id from ${component} where id = any($1) and provider_type = $2`,
        [[...componentIds], KEY_PROVIDER_TYPE],
      );
      const found = new Set(rows.map((r) => r.id));
      const missing = componentIds.filter((id) => !found.has(id));
      if (missing.length > 0) {
        throw new InvalidInputError(`no key component ${missing.join(', ')} in the restored database`, {
          hint: 'the restored database changed since its keys were read: read them again',
        });
      }
      let added = 0;
      for (const id of componentIds) {
        const updated = await client.query(
          `update ${config} set value = 'false' where component_id = $1 and name = 'enabled'`,
          [id],
        );
        if (!updated.rowCount) {
          await client.query(
            `insert into ${config} (id, component_id, name, value) values ($1, $2, 'enabled', 'false')`,
            [randomUUID(), id],
          );
          added++;
        }
      }
      await client.query('commit');
      return added;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    }
  });
}
