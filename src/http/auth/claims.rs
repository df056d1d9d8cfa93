//! Claim checks done after the signature, by us rather than by `jsonwebtoken`: the
//! audience (compared as URLs, not strings) and the token's times (`iat`, lifetime).
//! Pure: no I/O, `now` is a parameter.

use std::time::Duration;

use serde_json::Value;

use super::LEEWAY_SECS;

/// Does the `aud` claim (a string or an array of strings, RFC 7519 §4.1.3) name
/// `expected` (our public URL plus the route)?
pub fn audience_matches(aud: &Value, expected: &url::Url) -> bool {
    let matches = |v: &Value| v.as_str().is_some_and(|s| same_endpoint(s, expected));
    match aud {
        Value::String(_) => matches(aud),
        Value::Array(items) => items.iter().any(matches),
        _ => false,
    }
}

/// The same endpoint, as a client may type it: scheme and host case do not matter (the
/// URL parser lowers them), nor a trailing slash, nor a default port written out; and
/// when our URL is on loopback, `localhost`, `127.0.0.1` and `[::1]` are one host (the
/// CDS Hooks sandbox puts in `aud` the discovery URL the user typed).
fn same_endpoint(aud: &str, expected: &url::Url) -> bool {
    let Ok(aud) = url::Url::parse(aud) else {
        return false;
    };
    let plain = |u: &url::Url| {
        u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    };
    let path = |u: &url::Url| u.path().trim_end_matches('/').to_string();
    let host_ok = match (aud.host(), expected.host()) {
        (Some(a), Some(e)) => a == e || (is_loopback(&e) && is_loopback(&a)),
        _ => false,
    };
    plain(&aud)
        && aud.scheme() == expected.scheme()
        && host_ok
        && aud.port_or_known_default() == expected.port_or_known_default()
        && path(&aud) == path(expected)
}

fn is_loopback(h: &url::Host<&str>) -> bool {
    match h {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => *ip == std::net::Ipv4Addr::LOCALHOST,
        url::Host::Ipv6(ip) => *ip == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// `iat` (CDS Hooks 2.0 "Trusting CDS Clients": required, a number) present, numeric,
/// not in the future beyond the leeway; and the token not valid for longer than
/// `max_lifetime` (+ leeway: the sandbox's tokens live 301 s against a 300 s default).
pub fn check_times(
    iat: Option<&Value>,
    exp: u64,
    now: u64,
    max_lifetime: Duration,
) -> Result<(), &'static str> {
    let iat = match iat {
        None | Some(Value::Null) => return Err("iat missing"),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or("iat not a number")?,
    };
    if iat > (now + LEEWAY_SECS) as f64 {
        return Err("iat in the future");
    }
    let longest = (max_lifetime.as_secs() + LEEWAY_SECS) as f64;
    if exp as f64 - iat > longest {
        return Err("token lifetime too long (exp - iat)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn aud_tolerates_trailing_slash_case_and_default_port() {
        let ours = url("https://cds.example.org/cds-services/dvt-patient-view");
        for ok in [
            "https://cds.example.org/cds-services/dvt-patient-view",
            "https://cds.example.org/cds-services/dvt-patient-view/",
            "https://CDS.Example.ORG/cds-services/dvt-patient-view",
            "HTTPS://cds.example.org:443/cds-services/dvt-patient-view",
        ] {
            assert!(audience_matches(&json!(ok), &ours), "{ok}");
        }
        for bad in [
            "https://cds.example.org/cds-services",
            "https://cds.example.org/cds-services/dvt-patient-view/feedback",
            "https://cds.example.org/CDS-SERVICES/dvt-patient-view",
            "http://cds.example.org/cds-services/dvt-patient-view",
            "https://cds.example.org:8443/cds-services/dvt-patient-view",
            "https://evil.example.org/cds-services/dvt-patient-view",
            "https://cds.example.org/cds-services/dvt-patient-view?x=1",
            "https://user@cds.example.org/cds-services/dvt-patient-view",
            // Loopback names are one host only when our own URL is on loopback.
            "https://localhost/cds-services/dvt-patient-view",
            "not a url",
        ] {
            assert!(!audience_matches(&json!(bad), &ours), "{bad}");
        }
    }

    #[test]
    fn aud_loopback_names_are_one_host_when_we_are_on_loopback() {
        let ours = url("http://127.0.0.1:8080/cds-services");
        for ok in [
            "http://localhost:8080/cds-services",
            "http://LOCALHOST:8080/cds-services/",
            "http://[::1]:8080/cds-services",
            "http://127.0.0.1:8080/cds-services",
        ] {
            assert!(audience_matches(&json!(ok), &ours), "{ok}");
        }
        for bad in [
            "http://localhost:8081/cds-services",
            "http://127.0.0.2:8080/cds-services",
            "http://example.org:8080/cds-services",
            "https://localhost:8080/cds-services",
        ] {
            assert!(!audience_matches(&json!(bad), &ours), "{bad}");
        }
        let ours = url("http://localhost:8080/cds-services");
        assert!(audience_matches(
            &json!("http://127.0.0.1:8080/cds-services"),
            &ours
        ));
    }

    #[test]
    fn aud_may_be_an_array_but_not_another_type() {
        let ours = url("https://cds.example.org/cds-services");
        assert!(audience_matches(
            &json!(["x", "https://cds.example.org/cds-services"]),
            &ours
        ));
        assert!(!audience_matches(&json!([]), &ours));
        assert!(!audience_matches(&json!(5), &ours));
        assert!(!audience_matches(
            &json!({"aud": "https://cds.example.org/cds-services"}),
            &ours
        ));
    }

    #[test]
    fn iat_is_required_numeric_and_not_in_the_future() {
        let five_min = Duration::from_secs(300);
        let now = 1_000_000;
        assert_eq!(
            check_times(Some(&json!(now)), now + 300, now, five_min),
            Ok(())
        );
        // A float is a number too (RFC 7519 NumericDate).
        assert_eq!(
            check_times(Some(&json!(now as f64 + 0.5)), now + 300, now, five_min),
            Ok(())
        );
        assert_eq!(
            check_times(None, now + 300, now, five_min),
            Err("iat missing")
        );
        assert_eq!(
            check_times(Some(&Value::Null), now + 300, now, five_min),
            Err("iat missing")
        );
        assert_eq!(
            check_times(Some(&json!("yesterday")), now + 300, now, five_min),
            Err("iat not a number")
        );
        assert_eq!(
            check_times(Some(&json!(now.to_string())), now + 300, now, five_min),
            Err("iat not a number")
        );
        // Within the leeway, clocks differ: accepted; beyond it, refused.
        assert_eq!(
            check_times(Some(&json!(now + 60)), now + 300, now, five_min),
            Ok(())
        );
        assert_eq!(
            check_times(Some(&json!(now + 61)), now + 361, now, five_min),
            Err("iat in the future")
        );
        assert_eq!(
            check_times(
                Some(&json!(now + 365 * 86_400)),
                now + 365 * 86_400 + 300,
                now,
                five_min
            ),
            Err("iat in the future")
        );
    }

    #[test]
    fn lifetime_is_bounded_with_the_leeway() {
        let five_min = Duration::from_secs(300);
        let now = 1_000_000;
        // The CDS Hooks sandbox: 301 s.
        assert_eq!(
            check_times(Some(&json!(now)), now + 301, now, five_min),
            Ok(())
        );
        assert_eq!(
            check_times(Some(&json!(now)), now + 360, now, five_min),
            Ok(())
        );
        assert_eq!(
            check_times(Some(&json!(now)), now + 361, now, five_min),
            Err("token lifetime too long (exp - iat)")
        );
        let ten_years = now + 10 * 365 * 86_400;
        assert!(check_times(Some(&json!(now)), ten_years, now, five_min).is_err());
        // exp at u64::MAX: no overflow, refused.
        assert!(check_times(Some(&json!(now)), u64::MAX, now, five_min).is_err());
        // A longer configured lifetime allows more.
        assert_eq!(
            check_times(
                Some(&json!(now)),
                now + 3600,
                now,
                Duration::from_secs(3600)
            ),
            Ok(())
        );
    }
}
