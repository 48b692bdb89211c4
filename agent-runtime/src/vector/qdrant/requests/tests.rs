//! Exact fields of every request the Qdrant backend sends, and of the conversions back.

use qdrant_client::qdrant::{
    PayloadSchemaInfo, PayloadSchemaType, PointId, condition::ConditionOneOf, point_id::PointIdOptions,
    query::Variant as QueryVariant, vector::Vector as VectorKind, vectors::VectorsOptions,
};
use serde_json::json;

use super::*;

fn payload(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn point(id: u64, dense: Vec<f32>, sparse: Option<SparseVector>) -> Point {
    Point { id, dense, sparse, payload: payload(json!({"kind": "knowledge", "chunk": 0})) }
}

fn keyword(key: &str, value: &str) -> Condition {
    Condition::matches(key, MatchValue::Keyword(value.to_owned()))
}

fn nearest_dense(data: Vec<f32>) -> Query {
    Query::new_nearest(VectorInput { variant: Some(vector_input::Variant::Dense(DenseVector { data })) })
}

fn nearest_sparse(indices: Vec<u32>, values: Vec<f32>) -> Query {
    Query::new_nearest(VectorInput {
        variant: Some(vector_input::Variant::Sparse(qdrant::SparseVector { values, indices })),
    })
}

fn with_payload() -> WithPayloadSelector {
    WithPayloadSelector { selector_options: Some(with_payload_selector::SelectorOptions::Enable(true)) }
}

fn without_vectors() -> WithVectorsSelector {
    WithVectorsSelector { selector_options: Some(with_vectors_selector::SelectorOptions::Enable(false)) }
}

#[test]
fn qdrant_collection_has_a_named_dense_vector_of_the_configured_size_and_an_idf_sparse_vector() {
    let request = create_collection("agent-a", 384, Distance::Cosine);
    let expected = CreateCollection {
        collection_name: "agent-a".to_owned(),
        vectors_config: Some(VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                map: HashMap::from([(
                    "dense".to_owned(),
                    VectorParams { size: 384, distance: qdrant::Distance::Cosine.into(), ..VectorParams::default() },
                )]),
            })),
        }),
        sparse_vectors_config: Some(SparseVectorConfig {
            map: HashMap::from([(
                "bm25".to_owned(),
                SparseVectorParams { modifier: Some(Modifier::Idf.into()), index: None },
            )]),
        }),
        ..CreateCollection::default()
    };
    assert_eq!(request, expected);
    let dot = create_collection("agent-a", 8, Distance::Dot);
    let Some(vectors_config::Config::ParamsMap(map)) = dot.vectors_config.and_then(|v| v.config) else {
        panic!("named vectors expected");
    };
    assert_eq!(map.map["dense"].distance, i32::from(qdrant::Distance::Dot));
    assert_eq!(map.map["dense"].size, 8);
}

#[test]
fn qdrant_payload_indexes_cover_the_filtered_fields_and_skip_existing_ones() {
    let none = HashMap::new();
    let all: Vec<_> = missing_indexes("c", &none).collect();
    let fields: Vec<_> = all.iter().map(|r| (r.field_name.as_str(), r.field_type)).collect();
    assert_eq!(
        fields,
        [
            ("kind", Some(FieldType::Keyword.into())),
            ("documentId", Some(FieldType::Keyword.into())),
            ("chunk", Some(FieldType::Integer.into())),
            ("scope", Some(FieldType::Keyword.into())),
            ("session", Some(FieldType::Keyword.into())),
            ("createdUnix", Some(FieldType::Integer.into())),
        ]
    );
    assert!(all.iter().all(|r| r.collection_name == "c" && r.wait == Some(true)));
    let existing = HashMap::from([(
        "kind".to_owned(),
        PayloadSchemaInfo { data_type: PayloadSchemaType::Keyword.into(), ..PayloadSchemaInfo::default() },
    )]);
    let rest: Vec<_> = missing_indexes("c", &existing).map(|r| r.field_name).collect();
    assert_eq!(rest, ["documentId", "chunk", "scope", "session", "createdUnix"]);
}

#[test]
fn qdrant_collection_settings_are_described_like_the_embedded_store() {
    assert_eq!(describe_configured(384, Distance::Cosine), "384-dimensional Cosine + BM25");
    assert_ne!(describe_configured(384, Distance::Dot), describe_configured(384, Distance::Cosine));
    assert_ne!(describe_configured(768, Distance::Cosine), describe_configured(384, Distance::Cosine));
    let unnamed = qdrant::CollectionParams {
        vectors_config: Some(VectorsConfig {
            config: Some(vectors_config::Config::Params(VectorParams {
                size: 384,
                distance: qdrant::Distance::Euclid.into(),
                ..VectorParams::default()
            })),
        }),
        ..qdrant::CollectionParams::default()
    };
    assert_eq!(describe(Some(&unnamed)), "unnamed 384-dimensional Euclid + no BM25");
    assert_eq!(describe(None), "no dense + no BM25");
}

#[test]
fn qdrant_upsert_waits_and_sends_named_dense_and_sparse_vectors_with_the_json_payload() {
    let sparse = SparseVector { indices: vec![3, 9], values: vec![0.5, 1.5] };
    let request = upsert_points("c", vec![point(7, vec![0.1, 0.2], Some(sparse)), point(8, vec![0.3, 0.4], None)], 2)
        .expect("valid points");
    assert_eq!(request.collection_name, "c");
    assert_eq!(request.wait, Some(true));
    assert_eq!(request.points.len(), 2);
    let first = &request.points[0];
    assert_eq!(first.id, Some(PointId { point_id_options: Some(PointIdOptions::Num(7)) }));
    let Some(VectorsOptions::Vectors(named)) = first.vectors.clone().and_then(|v| v.vectors_options) else {
        panic!("named vectors expected");
    };
    assert_eq!(named.vectors.len(), 2);
    assert!(matches!(&named.vectors["dense"].vector, Some(VectorKind::Dense(d)) if d.data == [0.1, 0.2]));
    assert!(matches!(
        &named.vectors["bm25"].vector,
        Some(VectorKind::Sparse(s)) if s.indices == [3, 9] && s.values == [0.5, 1.5]
    ));
    let json = Map::from(Payload::from(first.payload.clone()));
    assert_eq!(Value::Object(json), json!({"kind": "knowledge", "chunk": 0}));
    let Some(VectorsOptions::Vectors(second)) = request.points[1].vectors.clone().and_then(|v| v.vectors_options)
    else {
        panic!("named vectors expected");
    };
    assert_eq!(second.vectors.keys().collect::<Vec<_>>(), ["dense"]);
}

#[test]
fn qdrant_upsert_with_one_wrong_sized_vector_is_refused_whole() {
    let points = vec![point(1, vec![0.0; 4], None), point(2, vec![0.0; 3], None)];
    let error = upsert_points("c", points, 4).expect_err("wrong dimension");
    assert!(matches!(error, VectorError::WrongDimension { id: Some(2), expected: 4, got: 3 }), "{error}");
}

#[test]
fn qdrant_malformed_sparse_vectors_are_refused_before_sending() {
    let uneven = SparseVector { indices: vec![1, 2], values: vec![1.0] };
    let repeated = SparseVector { indices: vec![4, 1, 4], values: vec![1.0; 3] };
    for sparse in [uneven, repeated] {
        let error = upsert_points("c", vec![point(1, vec![0.0; 2], Some(sparse.clone()))], 2).expect_err("malformed");
        assert!(matches!(&error, VectorError::InvalidSparse(why) if why.starts_with("point 1: ")), "{error}");
        let search = SearchRequest { sparse: Some(sparse), limit: 3, ..SearchRequest::default() };
        assert!(matches!(query_points("c", search, 2), Err(VectorError::InvalidSparse(_))));
    }
}

#[test]
fn qdrant_delete_waits_and_selects_points_by_filter() {
    let filter = PayloadFilter::new("documentId", Match::Keyword("doc-1".into()));
    let request = delete_points("c", &filter).expect("valid filter");
    let expected = DeletePoints {
        collection_name: "c".to_owned(),
        wait: Some(true),
        points: Some(PointsSelector {
            points_selector_one_of: Some(points_selector::PointsSelectorOneOf::Filter(Filter::must([keyword(
                "documentId",
                "doc-1",
            )]))),
        }),
        ..DeletePoints::default()
    };
    assert_eq!(request, expected);
    assert!(matches!(delete_points("c", &PayloadFilter::default()), Err(VectorError::EmptyFilter)));
}

#[test]
fn qdrant_dense_search_queries_the_dense_vector_with_the_threshold_on_top() {
    let filter = PayloadFilter::new("kind", Match::Keyword("memory".into()));
    let request = SearchRequest {
        dense: Some(vec![1.0, 0.0]),
        limit: 5,
        filter: Some(filter.clone()),
        score_threshold: Some(0.4),
        ..SearchRequest::default()
    };
    let expected = QueryPoints {
        collection_name: "c".to_owned(),
        query: Some(nearest_dense(vec![1.0, 0.0])),
        using: Some("dense".to_owned()),
        filter: Some(Filter::must([keyword("kind", "memory")])),
        score_threshold: Some(0.4),
        limit: Some(5),
        with_payload: Some(with_payload()),
        with_vectors: Some(without_vectors()),
        ..QueryPoints::default()
    };
    assert_eq!(query_points("c", request, 2).expect("valid"), expected);
}

#[test]
fn qdrant_sparse_search_queries_the_bm25_vector() {
    let request = SearchRequest {
        sparse: Some(SparseVector { indices: vec![5], values: vec![2.0] }),
        limit: 3,
        score_threshold: Some(1.0),
        ..SearchRequest::default()
    };
    let query = query_points("c", request, 2).expect("valid");
    assert_eq!(query.query, Some(nearest_sparse(vec![5], vec![2.0])));
    assert_eq!(query.using.as_deref(), Some("bm25"));
    assert_eq!(query.score_threshold, Some(1.0));
    assert!(query.prefetch.is_empty() && query.filter.is_none());
}

#[test]
fn qdrant_hybrid_search_fuses_a_dense_and_a_sparse_prefetch_by_rrf() {
    let request = SearchRequest {
        dense: Some(vec![0.0, 1.0]),
        sparse: Some(SparseVector { indices: vec![1, 7], values: vec![1.0, 0.5] }),
        limit: 20,
        filter: Some(PayloadFilter::new("kind", Match::Keyword("knowledge".into()))),
        score_threshold: Some(0.3),
    };
    let filter = Some(Filter::must([keyword("kind", "knowledge")]));
    let expected = QueryPoints {
        collection_name: "c".to_owned(),
        prefetch: vec![
            PrefetchQuery {
                query: Some(nearest_dense(vec![0.0, 1.0])),
                using: Some("dense".to_owned()),
                filter: filter.clone(),
                score_threshold: Some(0.3),
                limit: Some(80),
                ..PrefetchQuery::default()
            },
            PrefetchQuery {
                query: Some(nearest_sparse(vec![1, 7], vec![1.0, 0.5])),
                using: Some("bm25".to_owned()),
                filter: filter.clone(),
                score_threshold: None,
                limit: Some(80),
                ..PrefetchQuery::default()
            },
        ],
        query: Some(Query { variant: Some(QueryVariant::Rrf(qdrant::Rrf { k: Some(2), weights: vec![1.0, 0.5] })) }),
        using: None,
        filter,
        score_threshold: None,
        limit: Some(20),
        with_payload: Some(with_payload()),
        with_vectors: Some(without_vectors()),
        ..QueryPoints::default()
    };
    assert_eq!(query_points("c", request.clone(), 2).expect("valid"), expected);
    let small = query_points("c", SearchRequest { limit: 3, ..request }, 2).expect("valid");
    assert!(small.prefetch.iter().all(|p| p.limit == Some(MIN_PREFETCH as u64)));
}

#[test]
fn qdrant_search_with_a_wrong_sized_or_missing_query_vector_is_refused() {
    let wrong = SearchRequest { dense: Some(vec![0.0; 3]), limit: 1, ..SearchRequest::default() };
    assert!(matches!(query_points("c", wrong, 4), Err(VectorError::WrongDimension { id: None, expected: 4, got: 3 })));
    let empty = SearchRequest { limit: 1, ..SearchRequest::default() };
    assert!(matches!(query_points("c", empty, 4), Err(VectorError::EmptyRequest)));
}

#[test]
fn qdrant_filter_keeps_keywords_with_spaces_as_exact_matches() {
    let filter = PayloadFilter::new("documentName", Match::Keyword("annual report.pdf".into()))
        .and("chunk", Match::Integer(0))
        .and("createdUnix", Match::Range { gte: None, lte: Some(99.0) });
    let translated = grpc_filter(&filter).expect("valid keys");
    let expected = Filter::must([
        Condition::matches("documentName", MatchValue::Keyword("annual report.pdf".to_owned())),
        Condition::matches("chunk", MatchValue::Integer(0)),
        Condition::range("createdUnix", qdrant::Range { lte: Some(99.0), ..qdrant::Range::default() }),
    ]);
    assert_eq!(translated, expected);
    let Some(ConditionOneOf::Field(field)) = &translated.must[0].condition_one_of else { panic!("field condition") };
    assert!(matches!(field.r#match.as_ref().and_then(|m| m.match_value.clone()), Some(MatchValue::Keyword(_))));
    assert!(translated.should.is_empty() && translated.must_not.is_empty());
}

#[test]
fn qdrant_filter_with_an_invalid_key_is_refused() {
    let filter = PayloadFilter::new("a..b", Match::Integer(1));
    assert!(matches!(grpc_filter(&filter), Err(VectorError::InvalidKey(key)) if key == "a..b"));
}

#[test]
fn qdrant_count_is_exact_and_scroll_returns_payloads_without_vectors() {
    let filter = PayloadFilter::new("kind", Match::Keyword("knowledge".into()));
    let count = count_points("c", Some(&filter)).expect("valid");
    assert_eq!(count.exact, Some(true));
    assert_eq!(count.filter, Some(Filter::must([keyword("kind", "knowledge")])));
    assert_eq!(count_points("c", None).expect("valid").filter, None);
    let scroll = scroll_points("c", Some(&filter), 100).expect("valid");
    assert_eq!(scroll.limit, Some(100));
    assert_eq!(scroll.with_payload, Some(with_payload()));
    assert_eq!(scroll.with_vectors, Some(without_vectors()));
    assert_eq!(scroll_points("c", None, usize::MAX).expect("valid").limit, Some(u32::MAX));
}

#[test]
fn qdrant_hits_carry_numeric_ids_and_json_payloads_and_refuse_uuids() {
    let stored =
        Payload::from(payload(json!({"text": "hi", "chunk": 2, "score": 0.5, "tags": ["a"], "meta": {"ok": true}})));
    let hit = hit(Some(PointId::from(42)), 0.9, stored.clone().into()).expect("numeric id");
    assert_eq!(hit.id, 42);
    assert_eq!(
        Value::Object(hit.payload),
        json!({"text": "hi", "chunk": 2, "score": 0.5, "tags": ["a"], "meta": {"ok": true}})
    );
    let uuid = PointId { point_id_options: Some(PointIdOptions::Uuid("0b0e-x".to_owned())) };
    assert!(matches!(super::hit(Some(uuid), 0.0, HashMap::new()), Err(VectorError::ForeignId(id)) if id == "0b0e-x"));
}
