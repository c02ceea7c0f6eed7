//! Where every Flinks call goes: the one place a URL is built.
//!
//! Two configured bases (each up to the customer id) and the product table
//! give every URL: a [`Call`]'s path parts below its host's base, and
//! Authorize at `<base of the product's authorize host>/BankingServices/Authorize`.
//! Two optional full-URL overrides remain from before products existed
//! (FLINKQ_AUTHORIZE_URL, FLINKQ_INVESTMENTS_URL). Path values (the
//! RequestId, the loginId) are pushed as percent-encoded segments, never
//! concatenated: a RequestId holding `/`, `?` or `%` stays one segment.

use flinkq_shared::product::{Call, Host, Part};
use flinkq_shared::{LoginId, Product};
use url::Url;

/// The name of the Authorize call (its `endpoint` metric label).
pub const AUTHORIZE: &str = "Authorize";

/// Authorize's path below an instance base.
const AUTHORIZE_PATH: [&str; 2] = ["BankingServices", AUTHORIZE];

/// The call FLINKQ_INVESTMENTS_URL replaces (the table's name of it).
const INVESTMENTS_CALL: &str = "Investments";

/// The configured Flinks bases and overrides.
#[derive(Debug, Clone)]
pub struct FlinksUrls {
    /// The banking instance, up to the customer id (FLINKQ_FLINKS_URL).
    pub banking: Url,
    /// The wealth instance, up to the customer id (FLINKQ_WEALTH_URL).
    pub wealth: Url,
    /// Full Authorize URL of the products whose Authorize goes to the
    /// wealth instance (FLINKQ_AUTHORIZE_URL).
    pub wealth_authorize: Option<Url>,
    /// Full URL of the `Investments` call (FLINKQ_INVESTMENTS_URL).
    pub investments: Option<Url>,
}

impl FlinksUrls {
    /// The base of `host`.
    fn base(&self, host: Host) -> &Url {
        match host {
            Host::Banking => &self.banking,
            Host::Wealth => &self.wealth,
        }
    }

    /// Where `product`'s Authorize goes.
    pub fn authorize(&self, product: Product) -> Url {
        let host = product.spec().authorize_host;
        if host == Host::Wealth
            && let Some(url) = &self.wealth_authorize
        {
            return url.clone();
        }
        below(self.base(host), AUTHORIZE_PATH.iter().copied())
    }

    /// Where `call` goes for `login` in the session `request_id`.
    pub fn url(&self, call: &Call, login: &LoginId, request_id: &str) -> Url {
        if call.name == INVESTMENTS_CALL
            && let Some(url) = &self.investments
        {
            return url.clone();
        }
        let login = login.to_string();
        let segments = call.path.iter().map(|part| match part {
            Part::Text(text) => *text,
            Part::RequestId => request_id,
            Part::LoginId => login.as_str(),
            // not a path value; kept visible rather than dropped
            Part::True => "true",
        });
        below(self.base(call.host), segments)
    }
}

/// `base` with `segments` appended, each percent-encoded as one segment. A
/// trailing slash of the base is tolerated (its empty last segment goes).
fn below<'a>(base: &Url, segments: impl IntoIterator<Item = &'a str>) -> Url {
    let mut url = base.clone();
    // a validated base is http(s) with a host: it always has segments
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// Why a configured base cannot be used.
pub fn check_base(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{url:?} is not an http(s) URL with a host"));
    }
    if url.query().is_some() {
        return Err(
            "a base URL takes no query (`?…`): give the instance base up to the customer id, e.g. https://<instance>-api.private.fin.ag/v3/<customerId>"
                .into(),
        );
    }
    if url.fragment().is_some() {
        return Err("a base URL takes no fragment (`#…`)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flinkq_shared::product::{Method, OnPending};

    fn urls(banking: &str, wealth: &str) -> FlinksUrls {
        FlinksUrls {
            banking: Url::parse(banking).expect("url"),
            wealth: Url::parse(wealth).expect("url"),
            wealth_authorize: None,
            investments: None,
        }
    }

    fn product(name: &str) -> Product {
        name.parse().expect("known product")
    }

    const BANK: &str = "https://bank.example/v3/cust";
    const WEALTH: &str = "https://wealth.example/v3/cust";

    #[test]
    fn every_call_of_every_product_goes_below_its_hosts_base() {
        let urls = urls(BANK, WEALTH);
        let login = LoginId::random();
        for product in Product::all() {
            for stage in product.stages() {
                let calls = match &stage.on_pending {
                    OnPending::Then(poll) => vec![&stage.first, poll],
                    OnPending::Repeat => vec![&stage.first],
                };
                for call in calls {
                    let url = urls.url(call, &login, "r-1").to_string();
                    let base = match call.host {
                        Host::Banking => BANK,
                        Host::Wealth => WEALTH,
                    };
                    assert!(url.starts_with(&format!("{base}/")), "{url}");
                    assert!(url.contains(call.name), "{url}");
                    assert_eq!(call.method == Method::Get, call.body.is_empty());
                }
            }
        }
        let detail = product("accounts-detail").stage(0).expect("stage");
        assert_eq!(
            urls.url(detail.call(true), &login, "r-1").as_str(),
            format!("{BANK}/BankingServices/GetAccountsDetailAsync/r-1")
        );
        let attributes = product("attributes").stage(1).expect("stage");
        assert_eq!(
            urls.url(attributes.call(false), &login, "r-1").as_str(),
            format!("{BANK}/insight/login/{login}/attributes/r-1/GetAllAttributes")
        );
        let investments = product("investments").stage(0).expect("stage");
        assert_eq!(
            urls.url(investments.call(false), &login, "r-1").as_str(),
            format!("{WEALTH}/Investments")
        );
    }

    #[test]
    fn a_request_id_with_slash_question_mark_or_percent_stays_one_path_segment() {
        let urls = urls(BANK, WEALTH);
        let login = LoginId::random();
        let call = product("accounts-detail")
            .stage(0)
            .expect("stage")
            .call(true);
        for request_id in ["a/b", "a?b=c", "100%", "../../Authorize", "a#b", "a b"] {
            let url = urls.url(call, &login, request_id);
            assert_eq!(url.query(), None, "{request_id}: {url}");
            assert_eq!(url.fragment(), None, "{request_id}: {url}");
            let segments: Vec<&str> = url.path_segments().expect("segments").collect();
            assert_eq!(
                segments,
                [
                    "v3",
                    "cust",
                    "BankingServices",
                    "GetAccountsDetailAsync",
                    segments[4]
                ],
                "{request_id}: {url}"
            );
            let decoded = percent_decode(segments[4]);
            assert_eq!(decoded, request_id, "{url}");
        }
    }

    fn percent_decode(segment: &str) -> String {
        let bytes = segment.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_trailing_slash_on_a_base_is_tolerated() {
        let urls = urls(&format!("{BANK}/"), &format!("{WEALTH}/"));
        let login = LoginId::random();
        assert_eq!(
            urls.authorize(product("statements")).as_str(),
            format!("{BANK}/BankingServices/Authorize")
        );
        let investments = product("investments").stage(0).expect("stage");
        assert_eq!(
            urls.url(investments.call(true), &login, "r").as_str(),
            format!("{WEALTH}/Investments")
        );
    }

    #[test]
    fn authorize_goes_to_the_products_authorize_host_and_overrides_replace_only_their_call() {
        let mut urls = urls(BANK, WEALTH);
        assert_eq!(
            urls.authorize(product("investments")).as_str(),
            format!("{WEALTH}/BankingServices/Authorize")
        );
        assert_eq!(
            urls.authorize(product("accounts-summary")).as_str(),
            format!("{BANK}/BankingServices/Authorize")
        );
        urls.wealth_authorize = Some(Url::parse("https://auth.example/Authorize").expect("url"));
        urls.investments = Some(Url::parse("https://inv.example/x/Investments").expect("url"));
        assert_eq!(
            urls.authorize(product("investments")).as_str(),
            "https://auth.example/Authorize"
        );
        assert_eq!(
            urls.authorize(product("accounts-detail")).as_str(),
            format!("{BANK}/BankingServices/Authorize"),
            "the override is the wealth Authorize only"
        );
        let login = LoginId::random();
        let investments = product("investments").stage(0).expect("stage");
        assert_eq!(
            urls.url(investments.call(false), &login, "r").as_str(),
            "https://inv.example/x/Investments"
        );
        let statements = product("statements").stage(0).expect("stage");
        assert_eq!(
            urls.url(statements.call(false), &login, "r").as_str(),
            format!("{BANK}/BankingServices/GetStatements")
        );
    }

    #[test]
    fn bases_with_a_query_a_fragment_or_another_scheme_are_refused() {
        let check = |s: &str| check_base(&Url::parse(s).expect("url"));
        assert!(check(BANK).is_ok());
        assert!(check(&format!("{BANK}/")).is_ok());
        assert!(
            check(&format!("{BANK}?key=1"))
                .expect_err("query")
                .contains("query")
        );
        assert!(
            check(&format!("{BANK}#x"))
                .expect_err("fragment")
                .contains("fragment")
        );
        assert!(
            check("ftp://bank.example/v3")
                .expect_err("scheme")
                .contains("http(s)")
        );
    }
}
