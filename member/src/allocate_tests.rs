use super::{Allocator, FieldError, FieldErrorReason, apply_defaults};
use serde_json::{Value, json};

/// A defaulted Service from a YAML fixture, as the apiserver hands it to the allocator.
fn svc(text: &str) -> Value {
    let mut obj: Value = serde_yaml::from_str(text).unwrap();
    apply_defaults("v1", "Service", &mut obj);
    obj
}

fn create(alloc: &mut Allocator, text: &str) -> Result<Value, Vec<FieldError>> {
    let mut obj = svc(text);
    alloc.admit_service(None, &mut obj).map(|()| obj)
}

fn update(alloc: &mut Allocator, live: &Value, text: &str) -> Result<Value, Vec<FieldError>> {
    let mut obj = svc(text);
    alloc.admit_service(Some(live), &mut obj).map(|()| obj)
}

const WEB: &str = "{apiVersion: v1, kind: Service, metadata: {name: web, namespace: default}, spec: {selector: {app: web}, ports: [{name: http, port: 80}]}}";

#[test]
fn create_allocates_from_the_dynamic_part_of_the_range() {
    let mut alloc = Allocator::default();
    let web = create(&mut alloc, WEB).unwrap();
    assert_eq!(web["spec"]["clusterIP"], "10.96.1.1");
    assert_eq!(web["spec"]["clusterIPs"], json!(["10.96.1.1"]));
    assert_eq!(web["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(web["spec"]["ipFamilyPolicy"], "SingleStack");
    assert!(web["spec"]["ports"][0].get("nodePort").is_none());
    assert!(alloc.ip_allocated("10.96.1.1"));

    let other = create(&mut alloc, &WEB.replace("name: web,", "name: api,")).unwrap();
    assert_eq!(other["spec"]["clusterIP"], "10.96.1.2");
}

#[test]
fn requested_ip_is_honoured_once() {
    let mut alloc = Allocator::default();
    let dns = WEB.replace("spec: {", "spec: {clusterIP: 10.96.0.10, ");
    let first = create(&mut alloc, &dns).unwrap();
    assert_eq!(first["spec"]["clusterIPs"], json!(["10.96.0.10"]));

    let errors = create(&mut alloc, &dns.replace("name: web,", "name: dns2,")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        r#"spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"#
    );
    assert_eq!(errors[0].reason, FieldErrorReason::Invalid);

    let outside = WEB.replace("spec: {", "spec: {clusterIP: 192.168.0.9, ");
    let errors = create(&mut alloc, &outside).unwrap_err();
    assert_eq!(
        errors[0].message(),
        r#"Invalid value: []string{"192.168.0.9"}: failed to allocate IP 192.168.0.9: the provided IP (192.168.0.9) is not in the valid range. The range of valid IPs is 10.96.0.0/12"#
    );
}

#[test]
fn first_address_belongs_to_the_kubernetes_service() {
    let mut alloc = Allocator::default();
    let stolen = WEB.replace("spec: {", "spec: {clusterIP: 10.96.0.1, ");
    assert!(create(&mut alloc, &stolen).is_err());
    let kubernetes = "{apiVersion: v1, kind: Service, metadata: {name: kubernetes, namespace: default}, spec: {clusterIP: 10.96.0.1, ports: [{name: https, port: 443, targetPort: 6443}]}}";
    let created = create(&mut alloc, kubernetes).unwrap();
    assert_eq!(created["spec"]["clusterIP"], "10.96.0.1");
    assert!(create(&mut alloc, kubernetes).is_err(), "only once");
}

#[test]
fn headless_services_get_no_address() {
    let mut alloc = Allocator::default();
    let headless = create(
        &mut alloc,
        "{apiVersion: v1, kind: Service, metadata: {name: db}, spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}}",
    )
    .unwrap();
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(headless["spec"]["ipFamilyPolicy"], "SingleStack");
    let selectorless = create(
        &mut alloc,
        "{apiVersion: v1, kind: Service, metadata: {name: ext}, spec: {clusterIP: None, ports: [{port: 5432}]}}",
    )
    .unwrap();
    assert_eq!(selectorless["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(selectorless["spec"]["ipFamilies"], json!(["IPv4"]));
    // Nothing was taken: the next Service gets the first dynamic address.
    assert_eq!(
        create(&mut alloc, WEB).unwrap()["spec"]["clusterIP"],
        "10.96.1.1"
    );
}

#[test]
fn external_name_services_get_nothing() {
    let mut alloc = Allocator::default();
    let external = create(
        &mut alloc,
        "{apiVersion: v1, kind: Service, metadata: {name: e}, spec: {type: ExternalName, externalName: example.com}}",
    )
    .unwrap();
    assert!(external["spec"].get("clusterIP").is_none());
    assert!(external["spec"].get("ipFamilies").is_none());
}

const NODE_PORT: &str = "{apiVersion: v1, kind: Service, metadata: {name: np}, spec: {type: NodePort, selector: {app: np}, ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53}]}}";

#[test]
fn node_ports_auto_explicit_and_duplicate() {
    let mut alloc = Allocator::default();
    let auto = create(&mut alloc, NODE_PORT).unwrap();
    let ports = &auto["spec"]["ports"];
    assert_eq!(
        ports[0]["nodePort"], 30086,
        "first port after kube's static band"
    );
    assert_eq!(ports[1]["nodePort"], 30087);
    assert_eq!(
        ports[2]["nodePort"], 30087,
        "same port number over TCP and UDP shares its node port"
    );

    let explicit = NODE_PORT.replace("name: np", "name: np2").replace(
        "{name: http, port: 80}",
        "{name: http, port: 80, nodePort: 30080}",
    );
    let created = create(&mut alloc, &explicit).unwrap();
    assert_eq!(created["spec"]["ports"][0]["nodePort"], 30080);
    assert!(alloc.port_allocated(30080));

    let errors = create(&mut alloc, &explicit.replace("name: np2", "name: np3")).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    // The failed create took nothing: its clusterIP and auto ports are free again.
    assert!(!alloc.ip_allocated("10.96.1.3"));
    assert!(!alloc.port_allocated(30089));

    let out = NODE_PORT.replace(
        "{name: http, port: 80}",
        "{name: http, port: 80, nodePort: 8080}",
    );
    let errors = create(&mut alloc, &out).unwrap_err();
    assert_eq!(
        errors[0].message(),
        "Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
}

#[test]
fn load_balancer_with_local_policy_gets_a_health_check_port() {
    let mut alloc = Allocator::default();
    let lb = create(
        &mut alloc,
        "{apiVersion: v1, kind: Service, metadata: {name: lb}, spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 443}]}}",
    )
    .unwrap();
    assert_eq!(lb["spec"]["ports"][0]["nodePort"], 30086);
    assert_eq!(lb["spec"]["healthCheckNodePort"], 30087);

    let no_ports = create(
        &mut alloc,
        "{apiVersion: v1, kind: Service, metadata: {name: lb2}, spec: {type: LoadBalancer, allocateLoadBalancerNodePorts: false, ports: [{port: 443}]}}",
    )
    .unwrap();
    assert!(no_ports["spec"]["ports"][0].get("nodePort").is_none());

    let errors = create(
        &mut alloc,
        "{apiVersion: v1, kind: Service, metadata: {name: c}, spec: {healthCheckNodePort: 31000, ports: [{port: 1, nodePort: 31001}]}}",
    )
    .unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
            "spec.healthCheckNodePort: Invalid value: 31000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ]
    );
}

#[test]
fn cluster_ip_may_not_change_once_set() {
    let mut alloc = Allocator::default();
    let live = create(&mut alloc, WEB).unwrap();
    let moved = WEB.replace("spec: {", "spec: {clusterIP: 10.96.5.5, ");
    let errors = update(&mut alloc, &live, &moved).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        r#"spec.clusterIPs[0]: Invalid value: []string{"10.96.5.5"}: may not change once set"#
    );
    assert!(!alloc.ip_allocated("10.96.5.5"));

    let headless = WEB.replace("spec: {", "spec: {clusterIP: None, ");
    let errors = update(&mut alloc, &live, &headless).unwrap_err();
    assert_eq!(errors[0].field, "spec.clusterIPs[0]");
    assert_eq!(errors[0].detail, "may not change once set");
}

#[test]
fn update_that_omits_allocated_values_keeps_them() {
    let mut alloc = Allocator::default();
    let live = create(&mut alloc, NODE_PORT).unwrap();
    // The same YAML applied again (kubectl replace / PUT without the allocated fields).
    let again = update(&mut alloc, &live, NODE_PORT).unwrap();
    assert_eq!(again["spec"], live["spec"]);
    // Resubmitting what was read back is fine too.
    let text = serde_json::to_string(&live).unwrap();
    assert_eq!(
        update(&mut alloc, &live, &text).unwrap()["spec"],
        live["spec"]
    );
    // A new port gets a new node port; the kept ones stay allocated.
    let more = NODE_PORT.replace(
        "{name: http, port: 80}",
        "{name: http, port: 80}, {name: metrics, port: 9090}",
    );
    let grown = update(&mut alloc, &live, &more).unwrap();
    assert_eq!(grown["spec"]["ports"][0]["nodePort"], 30086);
    assert_eq!(grown["spec"]["ports"][1]["nodePort"], 30088);
    assert!(alloc.port_allocated(30086) && alloc.port_allocated(30087));
}

#[test]
fn type_change_to_cluster_ip_releases_node_ports() {
    let mut alloc = Allocator::default();
    let live = create(&mut alloc, NODE_PORT).unwrap();
    let mut back: Value = live.clone();
    back["spec"]["type"] = json!("ClusterIP");
    back["spec"]
        .as_object_mut()
        .unwrap()
        .remove("externalTrafficPolicy");
    let admitted = {
        let mut obj = back.clone();
        alloc.admit_service(Some(&live), &mut obj).unwrap();
        obj
    };
    assert!(admitted["spec"]["ports"][0].get("nodePort").is_none());
    assert_eq!(admitted["spec"]["clusterIP"], live["spec"]["clusterIP"]);
    assert!(!alloc.port_allocated(30086) && !alloc.port_allocated(30087));
    assert!(alloc.ip_allocated("10.96.1.1"));
}

#[test]
fn release_frees_for_reuse() {
    let mut alloc = Allocator::default();
    let first = create(&mut alloc, NODE_PORT).unwrap();
    alloc.release(&first);
    assert!(!alloc.ip_allocated("10.96.1.1"));
    assert!(!alloc.port_allocated(30086));
    let second = create(&mut alloc, NODE_PORT).unwrap();
    assert_eq!(second["spec"]["clusterIP"], "10.96.1.1");
    assert_eq!(second["spec"]["ports"][0]["nodePort"], 30086);
}

#[test]
fn rebuild_from_existing_services() {
    let mut alloc = Allocator::default();
    let a = create(&mut alloc, NODE_PORT).unwrap();
    let b = create(
        &mut alloc,
        &WEB.replace("spec: {", "spec: {clusterIP: 10.96.0.10, "),
    )
    .unwrap();
    let mut rebuilt = Allocator::from_existing(&[a.clone(), b]);
    assert!(rebuilt.ip_allocated("10.96.1.1") && rebuilt.ip_allocated("10.96.0.10"));
    assert!(rebuilt.port_allocated(30086) && rebuilt.port_allocated(30087));
    let next = create(&mut rebuilt, &NODE_PORT.replace("name: np", "name: np2")).unwrap();
    assert_eq!(next["spec"]["clusterIP"], "10.96.1.2");
    assert_eq!(next["spec"]["ports"][0]["nodePort"], 30088);
    // A restart does not make an update look like a change.
    assert!(update(&mut rebuilt, &a, NODE_PORT).is_ok());
}

#[test]
fn custom_ranges_and_dual_stack_requests() {
    let mut alloc = Allocator::new("10.0.0.0/24", (30000, 30010)).unwrap();
    assert!(Allocator::new("10.0.0.0/33", (1, 2)).is_err());
    assert!(Allocator::new("10.0.0.0/24", (3, 2)).is_err());
    let web = create(&mut alloc, WEB).unwrap();
    assert_eq!(
        web["spec"]["clusterIP"], "10.0.0.17",
        "static band of 16 on a /24"
    );
    let v6 = WEB.replace(
        "spec: {",
        "spec: {ipFamilies: [IPv6], ipFamilyPolicy: RequireDualStack, ",
    );
    let errors = create(&mut alloc, &v6).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.ipFamilyPolicy", "spec.ipFamilies[0]"]);
    assert!(!alloc.ip_allocated("10.0.0.18"));
}

#[test]
fn apply_style_updates_of_cluster_ip() {
    let mut alloc = Allocator::default();
    let live = create(&mut alloc, WEB).unwrap();
    // kubectl apply patches clusterIP only: clusterIPs still holds the live value.
    let mut changed = live.clone();
    changed["spec"]["clusterIP"] = json!("10.96.7.7");
    let errors = alloc.admit_service(Some(&live), &mut changed).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        r#"spec.clusterIPs[0]: Invalid value: []string{"10.96.7.7"}: may not change once set"#
    );
    // A client that blanks clusterIP but sends clusterIPs back unchanged keeps the address.
    let mut blanked = live.clone();
    blanked["spec"]["clusterIP"] = json!("");
    alloc.admit_service(Some(&live), &mut blanked).unwrap();
    assert_eq!(blanked["spec"]["clusterIP"], "10.96.1.1");
    assert_eq!(blanked["spec"]["clusterIPs"], json!(["10.96.1.1"]));
    assert!(alloc.ip_allocated("10.96.1.1"));
}

#[test]
fn type_change_to_node_port_allocates_and_external_name_releases() {
    let mut alloc = Allocator::default();
    let live = create(&mut alloc, WEB).unwrap();
    let node_port = WEB.replace("spec: {", "spec: {type: NodePort, ");
    let exposed = update(&mut alloc, &live, &node_port).unwrap();
    assert_eq!(exposed["spec"]["clusterIP"], "10.96.1.1");
    assert_eq!(exposed["spec"]["ports"][0]["nodePort"], 30086);
    assert!(alloc.port_allocated(30086));

    let mut external = exposed.clone();
    external["spec"]["type"] = json!("ExternalName");
    external["spec"]["externalName"] = json!("example.com");
    alloc.admit_service(Some(&exposed), &mut external).unwrap();
    assert!(external["spec"].get("clusterIP").is_none());
    assert!(external["spec"]["ports"][0].get("nodePort").is_none());
    assert!(!alloc.ip_allocated("10.96.1.1"));
    assert!(!alloc.port_allocated(30086));
}
