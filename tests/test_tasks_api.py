"""Tasks over the API: create, cascade, report, submit, review, list; and the refusals."""
from __future__ import annotations

from datetime import date, timedelta

from tests.conftest import api_token

DUE = (date.today() + timedelta(days=30)).isoformat()


def _create(client, headers, code="410105", **overrides):
    body = {"title": "开展社区老年教育", "description": "全年不少于12期", "lead_department": "edu",
            "co_departments": ["civil"], "due_date": DUE, "target": {"name": "活动", "unit": "期", "value": 12},
            "weight": 1}
    body.update(overrides)
    return client.post(f"/api/v1/units/{code}/tasks", headers=headers, json=body)


def test_loop_through_the_api(client, people, run_jobs):
    office = api_token(client, "office-410105")
    created = _create(client, office)
    assert created.status_code == 201, created.get_json()
    task_id = created.get_json()["id"]
    assert created.get_json()["target"] == {"name": "活动", "unit": "期", "value": 12.0, "counted_from": None}
    cascaded = client.post(f"/api/v1/tasks/{task_id}/cascade", headers=office, json={"to": "children"})
    assert cascaded.status_code == 202
    run_jobs()
    run = client.get(f"/api/v1/tasks/{task_id}/cascade/{cascaded.get_json()['run_id']}", headers=office).get_json()
    assert run["state"] == "finished" and run["done"] == run["total"] == 2
    children = client.get(f"/api/v1/tasks/{task_id}", headers=office).get_json()["children"]
    assert [c["unit_code"] for c in children] == ["410105001", "410105002"]
    street_task = children[0]["id"]

    liaison = api_token(client, "edu-410105001")
    reported = client.post(f"/api/v1/tasks/{street_task}/reports", headers=liaison,
                           json={"percent": 50, "actual_value": 6, "narrative": "已开展6期"})
    assert reported.status_code == 201
    run_jobs()
    parent = client.get(f"/api/v1/tasks/{task_id}", headers=office).get_json()
    assert parent["progress"] == 25.0 and parent["actual_value"] == 6.0
    assert client.post(f"/api/v1/tasks/{street_task}/submit", headers=liaison).status_code == 200
    returned = client.post(f"/api/v1/tasks/{street_task}/review", headers=office,
                           json={"decision": "return", "comment": "请上传活动照片"})
    assert returned.status_code == 200 and returned.get_json()["status"] == "returned"
    client.post(f"/api/v1/tasks/{street_task}/reports", headers=liaison, json={"percent": 100, "actual_value": 12})
    client.post(f"/api/v1/tasks/{street_task}/submit", headers=liaison)
    accepted = client.post(f"/api/v1/tasks/{street_task}/review", headers=office, json={"decision": "accept"})
    assert accepted.get_json()["status"] == "accepted"
    detail = client.get(f"/api/v1/tasks/{street_task}", headers=liaison).get_json()
    assert [r["percent"] for r in detail["reports"]] == [100.0, 50.0]  # every report kept, newest first
    listing = client.get("/api/v1/units/410105/tasks?scope=subtree&status=accepted", headers=office).get_json()
    assert [t["id"] for t in listing["items"]] == [street_task] and listing["total"] == 1


def test_bad_input_names_the_field(client, people):
    office = api_token(client, "office-410105")
    for overrides, field in (({"due_date": "31/12/2026"}, "due_date"), ({"lead_department": "xyz"}, "lead_department"),
                             ({"co_departments": ["nope"]}, "co_departments"), ({"weight": 0}, "weight")):
        response = _create(client, office, **overrides)
        assert response.status_code == 400, overrides
        assert response.get_json()["error"]["field"] == field
    task_id = _create(client, office, code="410105").get_json()["id"]
    office_street = api_token(client, "office-410105")
    bad = client.post(f"/api/v1/tasks/{task_id}/reports", headers=office_street, json={"percent": 130})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "percent"
    assert client.get("/api/v1/units/410105/tasks?due_within=soon", headers=office).status_code == 400


def test_refusals(client, people, run_jobs):
    office = api_token(client, "office-410105")
    task_id = _create(client, office).get_json()["id"]
    client.post(f"/api/v1/tasks/{task_id}/cascade", headers=office, json={"to": "children"})
    run_jobs()
    children = client.get(f"/api/v1/tasks/{task_id}", headers=office).get_json()["children"]
    first, second = children[0]["id"], children[1]["id"]
    # Sibling street: 404 on everything of the other street.
    sibling = api_token(client, "office-410105002")
    assert client.get(f"/api/v1/tasks/{first}", headers=sibling).status_code == 404
    assert client.post(f"/api/v1/tasks/{first}/reports", headers=sibling, json={"percent": 1}).status_code == 404
    # The co-operating department of the street reports; its office too.
    civil = api_token(client, "civil-410105001")
    assert client.post(f"/api/v1/tasks/{first}/reports", headers=civil, json={"percent": 1}).status_code == 201
    # The street office may not review its own instance, nor change the parent's definition by cascading it away.
    street_office = api_token(client, "office-410105001")
    assert client.post(f"/api/v1/tasks/{first}/review", headers=street_office,
                       json={"decision": "accept"}).status_code in (400, 403)
    assert client.post(f"/api/v1/tasks/{first}/cascade", headers=street_office,
                       json={"to": "children"}).status_code == 400
    # A child office does not even see the parent's instance.
    assert client.post(f"/api/v1/tasks/{task_id}/reports", headers=street_office, json={"percent": 1}).status_code == 404
    # Upper office cascading to a unit that is not below.
    assert client.post(f"/api/v1/tasks/{task_id}/cascade", headers=office,
                       json={"to": ["410102001"]}).status_code == 400
    assert client.get(f"/api/v1/tasks/{second}", headers=api_token(client, "edu-410105001")).status_code == 404
    assert client.get(f"/api/v1/tasks/{task_id}").status_code == 401


def test_other_department_is_forbidden(client, people):
    office = api_token(client, "office-410105001")
    task_id = _create(client, office, code="410105001", co_departments=[]).get_json()["id"]
    civil = api_token(client, "civil-410105001")
    refused = client.post(f"/api/v1/tasks/{task_id}/reports", headers=civil, json={"percent": 10})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"


def test_subtree_list_holds_only_units_the_caller_may_see(client, people, run_jobs):
    office = api_token(client, "office-410105")
    task_id = _create(client, office).get_json()["id"]
    client.post(f"/api/v1/tasks/{task_id}/cascade", headers=office, json={"to": "children"})
    run_jobs()
    assert client.get("/api/v1/units/410105/tasks?scope=subtree", headers=office).get_json()["total"] == 3
    # A district liaison sees the district, not the streets' instances below it.
    liaison = api_token(client, "edu-410105")
    listing = client.get("/api/v1/units/410105/tasks?scope=subtree", headers=liaison).get_json()
    assert [t["id"] for t in listing["items"]] == [task_id]
