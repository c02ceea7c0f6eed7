//! A realistic /Investments payload that names its loginId.

use serde_json::{Value, json};

/// The 200 body for `login`: one institution, two accounts with positions
/// and transactions, in the shape of Flinks' Investments response.
pub fn investments_payload(login: &str, request_id: &str) -> Value {
    let seed = login
        .bytes()
        .fold(7_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let units = 10 + seed % 90;
    let price = 30.0 + (seed % 2_000) as f64 / 100.0;
    let market_value = (units as f64 * price * 100.0).round() / 100.0;
    json!({
        "HttpStatusCode": 200,
        "Investments": [{
            "Institution": {"Id": 999_999_999, "Name": "FlinksInvestment"},
            "Login": {"Id": login},
            "Accounts": [
                {
                    "Id": format!("{login}-tfsa"),
                    "Title": "TFSA",
                    "AccountNumber": format!("{:07}", seed % 10_000_000),
                    "Type": "TFSA",
                    "Currency": "CAD",
                    "Balance": {"MarketValue": market_value, "Cash": 412.18, "Total": market_value + 412.18},
                    "Positions": [{
                        "Symbol": "XIC",
                        "Description": "iShares Core S&P/TSX Capped Composite Index ETF",
                        "Quantity": units,
                        "Price": price,
                        "MarketValue": market_value,
                        "BookValue": (market_value * 0.91 * 100.0).round() / 100.0,
                        "Currency": "CAD"
                    }],
                    "Transactions": [
                        {"Date": "2026-10-01", "Code": "BUY", "Description": "Buy XIC", "Symbol": "XIC", "Quantity": units, "Amount": -market_value},
                        {"Date": "2026-09-15", "Code": "CONT", "Description": "Contribution", "Amount": 7000.0}
                    ]
                },
                {
                    "Id": format!("{login}-rrsp"),
                    "Title": "RRSP",
                    "AccountNumber": format!("{:07}", (seed / 7) % 10_000_000),
                    "Type": "RRSP",
                    "Currency": "CAD",
                    "Balance": {"MarketValue": 15230.55, "Cash": 0.0, "Total": 15230.55},
                    "Positions": [{"Symbol": "VFV", "Quantity": 110, "Price": 138.46, "MarketValue": 15230.55, "BookValue": 12001.0, "Currency": "CAD"}],
                    "Transactions": [{"Date": "2026-08-03", "Code": "DIV", "Description": "Dividend VFV", "Symbol": "VFV", "Amount": 41.2}]
                }
            ]
        }],
        "Login": {"Id": login, "Username": "demo-user", "IsScheduledRefresh": false},
        "RequestId": request_id,
        "Message": "Investments data is ready"
    })
}
