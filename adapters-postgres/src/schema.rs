//! diesel's view of the tables the migrations create (README.md, "Storage: PostgreSQL").

diesel::table! {
    clients (id) {
        id -> Int8,
        name -> Text,
        version -> Int4,
        image -> Text,
        cpu -> Text,
        mem -> Text,
        priority -> Float8,
        need_restart -> Bool,
        spawned_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    algorithm_status (id) {
        id -> Int8,
        client_id -> Int8,
        switches -> Jsonb,
        has_retries -> Bool,
    }
}

diesel::joinable!(algorithm_status -> clients (client_id));
diesel::allow_tables_to_appear_in_same_query!(clients, algorithm_status);

diesel::table! {
    pod_retries (pod) {
        pod -> Text,
        client_id -> Nullable<Int8>,
        operation -> Text,
        intent -> Int8,
        attempts -> Int4,
        error -> Text,
        rejected -> Bool,
        failed_at -> Timestamptz,
        next_retry_at -> Timestamptz,
    }
}
