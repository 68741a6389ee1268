/**
 * The services' pools parse timestamps with a faster parser than pg's own; every value must come
 * out as pg's own parser gives it, whatever the session's time zone.
 */
import pg from 'pg';
import { createPool } from '../../src/platform/database';
import { createTestDatabase } from '../support/database';

const literals = [
  '2026-11-26 02:28:11.123456+00',
  '2026-11-26 02:28:11.999999+00',
  '2026-11-26 02:28:11+00',
  '2026-02-28 23:59:59.5-03:30',
  '1900-01-01 00:00:00+00',
  '0001-01-01 00:00:00+00',
  '0044-03-15 12:00:00+00 BC',
  '9999-12-31 23:59:59.999+00',
  'infinity',
  '-infinity',
];

describe('timestamps read through a service pool', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: pg.Pool;

  beforeAll(async () => {
    database = await createTestDatabase('timestamps');
    pool = createPool(database.url, { size: 1 });
  });

  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  it.each(['UTC', 'Asia/Kolkata', 'America/St_Johns'])('match pg’s own parser in time zone %s', async (zone) => {
    const client = await pool.connect();
    try {
      await client.query(`set time zone '${zone}'`);
      const sql =
        'select v::timestamptz as tz, v::timestamp as plain ' +
        'from unnest($1::text[]) with ordinality as t(v, n) order by n';
      const { rows } = await client.query<{ tz: Date | number; plain: Date | number }>(sql, [literals]);
      const { rows: raw } = await client.query<{ tz: string; plain: string }>({
        text: sql,
        values: [literals],
        types: { getTypeParser: () => (value: string) => value },
      });
      const ownParser = pg.types.getTypeParser(1184, 'text') as (value: string) => Date | number;
      const ownPlainParser = pg.types.getTypeParser(1114, 'text') as (value: string) => Date | number;
      const time = (value: Date | number) => (value instanceof Date ? value.getTime() : value);
      expect(rows.map((row) => time(row.tz))).toEqual(raw.map((row) => time(ownParser(row.tz))));
      expect(rows.map((row) => time(row.plain))).toEqual(raw.map((row) => time(ownPlainParser(row.plain))));
      // Not a vacuous comparison: real instants came back, with their milliseconds.
      expect(rows[0].tz).toEqual(new Date('2026-11-26T02:28:11.123Z'));
      expect(rows[8].tz).toBe(Infinity);
    } finally {
      client.release();
    }
  });
});
