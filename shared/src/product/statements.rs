//! GetStatements (Canada only): the most recent PDF statement of each
//! account. The docs say nothing of an Async form: the same POST is
//! repeated while pending.

use super::{Call, Host, Method, OnPending, Part, ProductSpec, Shape, Stage};

pub(super) const SPEC: ProductSpec = ProductSpec {
    name: "statements",
    about: "the most recent statement of each account (GetStatements, repeated while pending)",
    authorize_host: Host::Banking,
    stages: &[Stage {
        first: Call {
            name: "GetStatements",
            method: Method::Post,
            host: Host::Banking,
            path: &[Part::Text("BankingServices"), Part::Text("GetStatements")],
            body: &[
                ("RequestId", Part::RequestId),
                ("NumberOfStatements", Part::Text("MostRecent")),
            ],
        },
        on_pending: OnPending::Repeat,
        payload: ("StatementsByAccount", Shape::Array),
    }],
};
