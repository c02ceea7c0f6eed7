//! Realistic 200 payloads that name their loginId, one per product, with
//! the top-level keys Flinks documents; deterministic from the login.

use serde_json::{Value, json};

use super::product::Product;

/// The 200 body of `product` for `login`.
pub fn product_payload(product: Product, login: &str, request_id: &str) -> Value {
    match product {
        Product::Investments => investments_payload(login, request_id),
        Product::AccountsDetail => accounts_detail_payload(login, request_id),
        Product::AccountsSummary => accounts_summary_payload(login, request_id),
        Product::Statements => statements_payload(login, request_id),
        Product::Attributes => attributes_payload(login, request_id),
    }
}

/// A stable number from the login, so a payload is the same on every run.
fn seed(login: &str) -> u64 {
    login
        .bytes()
        .fold(7_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

fn institution() -> Value {
    json!({"Id": 14, "Name": "FlinksCapital"})
}

fn login_block(login: &str) -> Value {
    json!({"Id": login, "Username": "demo-user", "IsScheduledRefresh": false, "Type": "Personal"})
}

/// GetAccountsDetail (and its `…Async`): accounts with holder and
/// transactions.
pub fn accounts_detail_payload(login: &str, request_id: &str) -> Value {
    let seed = seed(login);
    let balance = 1_000.0 + (seed % 900_000) as f64 / 100.0;
    json!({
        "HttpStatusCode": 200,
        "Accounts": [{
            "Id": format!("{login}-chq"),
            "Title": "Chequing",
            "AccountNumber": format!("{:07}", seed % 10_000_000),
            "Category": "Operations",
            "Type": "Chequing",
            "Currency": "CAD",
            "Balance": {"Available": balance, "Current": balance, "Limit": null},
            "Holder": {"Name": "Demo User", "Email": "demo@example.com"},
            "Transactions": [
                {"Id": format!("{login}-t1"), "Date": "2026-10-01", "Description": "Payroll", "Credit": 2_400.0, "Debit": null, "Balance": balance},
                {"Id": format!("{login}-t2"), "Date": "2026-09-28", "Description": "Groceries", "Credit": null, "Debit": 84.12, "Balance": balance - 2_400.0}
            ]
        }],
        "Login": login_block(login),
        "Institution": institution(),
        "RequestId": request_id
    })
}

/// GetAccountsSummary (and its `…Async`): balances and categories only.
pub fn accounts_summary_payload(login: &str, request_id: &str) -> Value {
    let seed = seed(login);
    json!({
        "HttpStatusCode": 200,
        "Accounts": [
            {"Id": format!("{login}-chq"), "Title": "Chequing", "Category": "Operations", "Type": "Chequing", "Currency": "CAD",
             "Balance": {"Available": 1_000.0 + (seed % 900_000) as f64 / 100.0}},
            {"Id": format!("{login}-cc"), "Title": "Visa", "Category": "Credits", "Type": "CreditCard", "Currency": "CAD",
             "Balance": {"Current": (seed % 300_000) as f64 / 100.0, "Limit": 5_000.0}}
        ],
        "Login": login_block(login),
        "Institution": institution(),
        "RequestId": request_id
    })
}

/// GetStatements: one PDF statement per account, Base64.
pub fn statements_payload(login: &str, request_id: &str) -> Value {
    json!({
        "HttpStatusCode": 200,
        "StatementsByAccount": [{
            "AccountNumber": format!("{:07}", seed(login) % 10_000_000),
            "Statements": [{
                "UniqueId": format!("{login}-2026-10"),
                "FileType": "pdf",
                // "%PDF-1.4\n%sim\n": a header, enough to recognise the type
                "Base64Bytes": "JVBERi0xLjQKJXNpbQo="
            }]
        }],
        "Login": login_block(login),
        "RequestId": request_id
    })
}

/// GetAllAttributes: a card of computed attributes.
pub fn attributes_payload(login: &str, request_id: &str) -> Value {
    let seed = seed(login);
    json!({
        "HttpStatusCode": 200,
        "Card": {
            "Id": format!("{login}-card"),
            "average_monthly_income": 2_400.0 + (seed % 100_000) as f64 / 100.0,
            "count_nsf_90_days": seed % 3,
            "sum_loan_payments_90_days": (seed % 50_000) as f64 / 100.0
        },
        "Login": login_block(login),
        "RequestId": request_id
    })
}

/// The 200 body for `login`: one institution, two accounts with positions
/// and transactions, in the shape of Flinks' Investments response.
pub fn investments_payload(login: &str, request_id: &str) -> Value {
    let seed = seed(login);
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
