// The DuckDB peer of `make bench` (see BENCHMARKS.md): the same 30-day features,
// computed in batch by DuckDB on the same event log, checked against `streamscore export`.
//
//   node bench/duckdb/features.mjs --events LOG --export ITEMS.jsonl [--json]
//
// The contract (spec sections 1-3), as of the final tick T:
// - valid records only: a JSON object with non-empty string event_id (<= 128 bytes),
//   customer_id (<= 64 bytes) and event_type, an event_time YYYY-MM-DDTHH:MM:SS[.f]Z naming a
//   real instant, and a JSON number amount >= 0 (kept as exact cents);
// - the first occurrence of (customer_id, event_id) in the log wins;
// - T = the end of the 5-minute window holding the largest accepted event_time;
// - features over transaction events with event_time in [T - 30 days, T);
//   last_event_time = the largest accepted event_time of any type.
// Not modelled: expiry and dedup forgetting (an event more than 30 days behind the
// watermark, a redelivery more than 30 days after its original) and `future` events
// (ahead of the wall clock), duplicate JSON keys, ids or event types that are not JSON
// strings (from_json turns them into text), a last_event_time written with a
// fraction (printed here in whole seconds) and amounts with more than 2 decimals. The
// generated logs have none of them (late events are at most 48 hours late, redeliveries a
// few records apart, all times in the past and in whole seconds, amounts in cents), so
// they cannot change the result there.
// Prints the timings and the comparison; exits 1 when a feature differs.
import { DuckDBInstance } from '@duckdb/node-api';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const events = arg('--events');
const exported = arg('--export');
const asJson = process.argv.includes('--json');
if (!events || !exported) {
  console.error('usage: node bench/duckdb/features.mjs --events LOG --export ITEMS.jsonl [--json]');
  process.exit(2);
}
const quote = (s) => `'${s.replaceAll("'", "''")}'`;

const instance = await DuckDBInstance.create(':memory:');
const db = await instance.connect();
const threads = (await db.runAndReadAll('SELECT current_setting(\'threads\') AS t')).getRowObjectsJS()[0].t;

// The query a user would write for the final table: load the log, parse each line once,
// keep the valid records, the first occurrence of each (customer_id, event_id), and
// aggregate the 30 days before the final tick. Three statements, as one would type them:
// - the lines as text (read_csv, one VARCHAR column: 0x1f never occurs in the log, no
//   quoting). Not read_json(ignore_errors = true): after a line truncated right after a
//   colon, its parser reads on into the next line and drops that valid record as well
//   (this log has such lines: 2 customers differed), so the lines are split first;
// - one parse per line (from_json on the lines json_valid accepts): the strings as
//   VARCHAR, the amount as JSON, so that a quoted amount (this log has them) is told from
//   a number. A separate table: inside one query, DuckDB inlines the parse into each test
//   of the filter that reads it and parses each line once per test;
// - the features: amount type, time, amount and lengths checked, DISTINCT ON for the
//   first occurrence, one scan for the final tick and the sums.
const t0 = performance.now();
await db.run(`
  CREATE TABLE lines AS
  SELECT line FROM read_csv(${quote(events)}, columns = {'line': 'VARCHAR'}, header = false,
                            delim = '\u001f', quote = '', escape = '', auto_detect = false)`);
const t1 = performance.now();
await db.run(`
  CREATE TABLE records AS  -- rowid: the position in the log (insertion order is kept)
  SELECT rowid AS pos,
         from_json(line, '{"event_id":"VARCHAR","customer_id":"VARCHAR","event_time":"VARCHAR","event_type":"VARCHAR","amount":"JSON"}') AS f
  FROM lines WHERE json_valid(line)`);
await db.run(`
  CREATE TABLE features AS
  WITH valid AS (
    SELECT pos, f.event_id, f.customer_id, f.event_type,
           try_strptime(f.event_time, ['%Y-%m-%dT%H:%M:%SZ', '%Y-%m-%dT%H:%M:%S.%fZ']) AS ts,
           try_cast(f.amount AS DECIMAL(18, 2)) AS amount  -- exact: JSON numbers with 2 decimals
    FROM records
    WHERE json_type(f.amount) IN ('UBIGINT', 'BIGINT', 'DOUBLE')  -- not a quoted amount
  ),
  accepted AS (  -- the first occurrence wins
    SELECT DISTINCT ON (customer_id, event_id) * FROM valid
    WHERE ts IS NOT NULL AND amount BETWEEN 0 AND 1000000000
      AND event_id <> '' AND customer_id <> '' AND event_type <> ''
      AND strlen(event_id) <= 128 AND strlen(customer_id) <= 64
    ORDER BY pos
  ),
  final_tick AS (SELECT (floor(epoch(max(ts)) / 300) + 1) * 300 AS t FROM accepted)
  SELECT customer_id,
         count(*) FILTER (WHERE in_window) AS txn,
         CAST(coalesce(sum(amount) FILTER (WHERE in_window), 0) * 100 AS BIGINT) AS cents,
         strftime(max(ts), '%Y-%m-%dT%H:%M:%SZ') AS last_event_time
  FROM (SELECT a.*, event_type = 'transaction' AND epoch(ts) >= t - 30 * 86400 AND epoch(ts) < t AS in_window
        FROM accepted a, final_tick)
  GROUP BY customer_id`);
const t2 = performance.now();

// The check, untimed: streamscore's export against DuckDB's features.
await db.run(`
  CREATE TABLE items AS
  SELECT substr(PK, 10) AS customer_id, features.total_txn_30d AS txn,
         CAST(round(features.total_amount_30d * 100) AS BIGINT) AS cents,
         CAST(round(features.avg_amount_30d * 100) AS BIGINT) AS avg_cents, last_event_time
  FROM read_json(${quote(exported)}, format = 'newline_delimited',
                 columns = {'PK': 'VARCHAR', 'features': 'STRUCT(total_txn_30d BIGINT, total_amount_30d DECIMAL(18,2), avg_amount_30d DECIMAL(18,2))',
                            'last_event_time': 'VARCHAR'})`);
const mismatches = (await db.runAndReadAll(`
  SELECT coalesce(f.customer_id, i.customer_id) AS customer_id,
         f.txn AS duckdb_txn, i.txn AS export_txn, f.cents AS duckdb_cents, i.cents AS export_cents,
         CASE WHEN f.txn > 0 THEN (2 * f.cents + f.txn) // (2 * f.txn) ELSE 0 END AS duckdb_avg_cents,
         i.avg_cents AS export_avg_cents, f.last_event_time AS duckdb_last, i.last_event_time AS export_last
  FROM features f FULL OUTER JOIN items i USING (customer_id)
  WHERE f.customer_id IS NULL OR i.customer_id IS NULL OR f.txn <> i.txn OR f.cents <> i.cents
     OR CASE WHEN f.txn > 0 THEN (2 * f.cents + f.txn) // (2 * f.txn) ELSE 0 END <> i.avg_cents
     OR f.last_event_time <> i.last_event_time
  ORDER BY 1`)).getRowObjectsJS();
const counts = (await db.runAndReadAll(
  'SELECT (SELECT count(*) FROM lines) AS lines, (SELECT count(*) FROM features) AS customers, (SELECT count(*) FROM items) AS items'
)).getRowObjectsJS()[0];

const result = {
  duckdb_threads: Number(threads),
  lines: Number(counts.lines),
  customers: Number(counts.customers),
  export_items: Number(counts.items),
  load_seconds: +((t1 - t0) / 1000).toFixed(3),
  features_seconds: +((t2 - t1) / 1000).toFixed(3),
  seconds: +((t2 - t0) / 1000).toFixed(3),
  mismatches: mismatches.length,
};
if (asJson) {
  console.log(JSON.stringify(result));
} else {
  console.log(`duckdb: ${result.lines} lines -> ${result.customers} customers in ${result.seconds} s ` +
              `(load ${result.load_seconds} s, features ${result.features_seconds} s, ${threads} threads)`);
  console.log(`duckdb: ${result.mismatches} mismatches against the export (${result.export_items} items)`);
}
for (const m of mismatches.slice(0, 5)) console.error('mismatch:', JSON.stringify(m, (k, v) => typeof v === 'bigint' ? Number(v) : v));
process.exit(mismatches.length === 0 ? 0 : 1);
