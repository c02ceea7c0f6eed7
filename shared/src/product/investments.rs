//! Investments (wealth instance): retired by Flinks on 2026-04-30, kept for
//! private instances that still serve it. The same POST, repeated while
//! pending (the provider's original guide).

use super::{Call, Host, Method, OnPending, Part, ProductSpec, Shape, Stage};

pub(super) const SPEC: ProductSpec = ProductSpec {
    name: "investments",
    about: "holdings from the wealth instance (POST /Investments, repeated while pending)",
    // a LoginId is unique per instance: the wealth one authorizes it
    authorize_host: Host::Wealth,
    stages: &[Stage {
        first: Call {
            name: "Investments",
            method: Method::Post,
            host: Host::Wealth,
            path: &[Part::Text("Investments")],
            body: &[
                ("RequestId", Part::RequestId),
                ("LoginId", Part::LoginId),
                ("MostRecentCached", Part::True),
            ],
        },
        on_pending: OnPending::Repeat,
        payload: ("Investments", Shape::Array),
    }],
};
