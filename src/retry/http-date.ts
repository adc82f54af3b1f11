// HTTP-date (RFC 9110 §5.6.7), strictly: the three forms a recipient must accept, and nothing else.
// Pure: "now" (needed only to place a two-digit year) is an argument. `Date.parse` is not used: it
// accepts anything that looks vaguely like a date (`x 99999` is the year 99999) and reads a date
// without a zone (asctime) in local time.
//
//   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//   rfc850-date  Sunday, 06-Nov-94 08:49:37 GMT   (obsolete; two-digit year)
//   asctime-date Sun Nov  6 08:49:37 1994         (obsolete; always UTC)
//
// Choices:
// - Names are case-sensitive, as the grammar's %s"…" strings are; "GMT" is the only zone.
// - A weekday name is required, of the form's kind (short in IMF-fixdate and asctime, long in
//   rfc850-date), but one that does not match the date is tolerated: the numeric fields name the
//   instant unambiguously, and RFC 9110 asks recipients to be robust when parsing timestamps.
// - Surrounding OWS (spaces, tabs) is not part of a field value and is ignored; any other extra
//   text refuses the value.
// - Second 60 (a leap second) is accepted and read as the first second of the next minute.
// - rfc850-date's two-digit year: RFC 9110 says a timestamp that appears to be more than 50 years in
//   the future is in the most recent past year with the same last two digits. Read as a sliding
//   window: the year chosen is the one whose instant lies in (now + 50 y − 100 y, now + 50 y].

const SHORT_DAYS = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAYS = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const OWS = '[ \\t]*';

const IMF_FIXDATE = new RegExp(`^${OWS}${SHORT_DAYS}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT${OWS}$`);
const RFC850_DATE = new RegExp(`^${OWS}${LONG_DAYS}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT${OWS}$`);
const ASCTIME_DATE = new RegExp(`^${OWS}${SHORT_DAYS} ${MONTH} (\\d{2}| \\d) ${TIME} (\\d{4})${OWS}$`);

/** Days in a month (0-based) of a proleptic Gregorian year. */
function daysInMonth(year: number, month: number): number {
  if (month === 1) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month]!;
}

/** ms since the epoch, UTC; null if a field is out of range. Years 0–99 are not shifted to 19xx. */
function instant(year: number, month: number, day: number, hour: number, minute: number, second: number): number | null {
  if (day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) return null;
  const d = new Date(0);
  d.setUTCFullYear(year, month, day); // unlike Date.UTC, does not read year 94 as 1994
  d.setUTCHours(hour, minute, second, 0); // second 60 rolls over to the next minute
  return d.getTime();
}

/** The instant 50 years after `nowMs` (same month, day and time; 29 Feb becomes 1 Mar). */
function fiftyYearsFrom(nowMs: number): number {
  const d = new Date(nowMs);
  d.setUTCFullYear(d.getUTCFullYear() + 50);
  return d.getTime();
}

/**
 * An HTTP-date in one of RFC 9110's three forms, as ms since the epoch (UTC); null for anything
 * else (garbage, another zone, another format, extra text, a field out of range).
 * `nowMs` places an rfc850-date's two-digit year.
 */
export function parseHttpDate(text: string, nowMs: number = Date.now()): number | null {
  let m = IMF_FIXDATE.exec(text);
  if (m !== null)
    return instant(Number(m[3]), MONTHS.indexOf(m[2] as (typeof MONTHS)[number]), Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  m = ASCTIME_DATE.exec(text);
  if (m !== null)
    return instant(
      Number(m[6]),
      MONTHS.indexOf(m[1] as (typeof MONTHS)[number]),
      Number(m[2]!.trim()),
      Number(m[3]),
      Number(m[4]),
      Number(m[5]),
    );
  m = RFC850_DATE.exec(text);
  if (m === null || !Number.isFinite(nowMs)) return null;
  const yy = Number(m[3]);
  const month = MONTHS.indexOf(m[2] as (typeof MONTHS)[number]);
  const [day, hour, minute, second] = [Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])];
  // Range-check the fields that do not depend on the century first, then place the year.
  if (hour > 23 || minute > 59 || second > 60 || day < 1 || day > 31) return null;
  const limit = fiftyYearsFrom(nowMs);
  const limitYear = new Date(limit).getUTCFullYear();
  let year = limitYear - ((((limitYear - yy) % 100) + 100) % 100); // latest year ≤ limitYear ending in yy
  // That year's instant may still lie past the limit (later in the same year): then a century earlier.
  // The comparison uses the instant as if the day were valid; the validity check follows.
  const probe = new Date(0);
  probe.setUTCFullYear(year, month, 1);
  probe.setUTCHours(0, 0, 0, 0);
  const asIf = probe.getTime() + ((day - 1) * 86_400 + hour * 3600 + minute * 60 + second) * 1000;
  if (asIf > limit) year -= 100;
  return instant(year, month, day, hour, minute, second);
}
