//! `time.add_date` with Go's normalisation: the date is computed field by
//! field and then normalised, so January 31 plus one month is March 2 (or
//! 3), as `time.Time.AddDate` does.

use anyhow::{bail, Result};
use regorus::unstable::{Expr, Ref, Span};
use regorus::Value;

use super::int_arg;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECONDS_PER_DAY: i128 = 86_400;

/// `time.add_date(ns, years, months, days)`, in UTC.
pub fn add_date(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let name = "time.add_date";
    let ns = i128::from(int_arg(name, &args[0], 1)?);
    let years = i128::from(int_arg(name, &args[1], 2)?);
    let months = i128::from(int_arg(name, &args[2], 3)?);
    let days = i128::from(int_arg(name, &args[3], 4)?);
    let seconds = ns.div_euclid(NANOS_PER_SECOND);
    let nanos = ns.rem_euclid(NANOS_PER_SECOND);
    let day = seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (y, m, d) = civil_from_days(day);
    // Month overflow carries into the year, day overflow into the month,
    // as Go's time.Date normalises.
    let month_index = m - 1 + months;
    let year = y + years + month_index.div_euclid(12);
    let month = month_index.rem_euclid(12) + 1;
    let day = days_from_civil(year, month, 1) + (d - 1) + days;
    let result = (day * SECONDS_PER_DAY + second_of_day) * NANOS_PER_SECOND + nanos;
    match i64::try_from(result) {
        Ok(ns) => Ok(Value::from(ns)),
        Err(_) => bail!("{name}: time outside of valid range"),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i128, m: i128, d: i128) -> i128 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(z: i128) -> (i128, i128, i128) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i128::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for day in [-800_000, -1, 0, 1, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }
}
