//! `dj_core::reuse`: the boundaries of the reuse rule.

use chrono::Utc;
use dj_core::reuse::must_refresh;

use chrono::TimeDelta;

#[test]
fn boundaries() {
    let now = Utc::now();
    assert!(!must_refresh(now, now));
    assert!(!must_refresh(now + TimeDelta::hours(5), now));
    assert!(!must_refresh(now - TimeDelta::seconds(3600), now));
    assert!(must_refresh(now - TimeDelta::seconds(3601), now));
    assert!(must_refresh(now - TimeDelta::days(400), now));
}
