"""The admins' Store page: what it lists, filters and deletes, for every role, through the test client."""

from __future__ import annotations

import datetime

from django.urls import reverse
from django.utils import timezone

from orchestrator.models import AuditEntry, StoreItem, StoreVector
from orchestrator.router import HashingEmbeddings
from orchestrator.store import DjangoStore, get_store
from orchestrator.store.admin import PAGE_SIZE
from tests.base import PageTestCase
from tests.escaping import HOSTILE

PAGE = reverse("store:items")
DELETE = reverse("store:item_delete")
DELETE_NAMESPACE = reverse("store:namespace_delete")


class StorePageTests(PageTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.store = get_store()
        self.store.put(("memories", "ada"), "tea", {"text": "likes tea"})
        self.store.put(("memories", "ada"), "born", {"text": "born 1815"}, ttl=60)
        self.store.put(("memories", "grace"), "navy", {"text": "rear admiral"})
        self.store.put(("Memories",), "upper", {"text": "another namespace"})

    def test_reviewers_operators_and_outsiders_get_403_and_delete_nothing(self) -> None:
        for role in ("reviewer", "operator", "outsider"):
            with self.subTest(role=role):
                self.login(role)
                self.assertEqual(self.client.get(PAGE).status_code, 403)
                self.assertEqual(self.client.post(DELETE, {"namespace": "memories.ada", "key": "tea"}).status_code, 403)
                self.assertEqual(self.client.post(DELETE_NAMESPACE, {"namespace": "memories"}).status_code, 403)
                self.assertNotContains(self.client.get(reverse("traces:executions")), f'href="{PAGE}"')
        self.assertEqual(StoreItem.objects.count(), 4)
        self.assertFalse(AuditEntry.objects.exists())

    def test_an_admin_sees_every_item_newest_first_with_its_namespaces_and_expiry(self) -> None:
        self.login("admin")
        response = self.client.get(PAGE)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, f'href="{PAGE}" aria-current="page"')
        items = response.context["listing"].items
        self.assertEqual([i.key for i in items], ["upper", "navy", "born", "tea"])
        self.assertEqual(response.context["listing"].namespaces[0], ("memories.ada", 2))
        self.assertContains(response, "likes tea")
        self.assertContains(response, "never")  # no TTL
        born = StoreItem.objects.get(key="born")  # a TTL of 60 minutes: when it expires, as a time
        self.assertContains(response, f'<time datetime="{born.expires_at.isoformat()}"')

    def test_the_namespace_filter_takes_labels_and_what_is_below_and_case_matters(self) -> None:
        self.login("admin")
        response = self.client.get(PAGE, {"namespace": "memories"})
        self.assertEqual({i.key for i in response.context["listing"].items}, {"tea", "born", "navy"})
        response = self.client.get(PAGE, {"namespace": "memories.ada", "key": "TE"})
        self.assertEqual([i.key for i in response.context["listing"].items], ["tea"])
        response = self.client.get(PAGE, {"namespace": "memories.ad"})
        self.assertEqual(response.context["listing"].items, [])
        self.assertContains(response, "No items match these filters.")

    def test_a_malformed_namespace_says_how_to_write_one(self) -> None:
        self.login("admin")
        response = self.client.get(PAGE, {"namespace": "memories..ada"})
        self.assertEqual(response.status_code, 422)
        self.assertContains(response, "separated by dots", status_code=422)

    def test_deleting_an_item_forgets_it_for_graphs_and_audits_it(self) -> None:
        self.login("admin")
        response = self.client.post(DELETE, {"namespace": "memories.ada", "key": "tea", "back_namespace": "memories",
                                             "back_key": "", "back_page": "1"}, follow=True)
        self.assertRedirects(response, f"{PAGE}?namespace=memories&page=1")
        self.assertContains(response, "Deleted tea from memories.ada.")
        self.assertIsNone(self.store.get(("memories", "ada"), "tea"))
        self.assertIsNotNone(self.store.get(("memories", "ada"), "born"))
        entry = AuditEntry.objects.get()
        self.assertEqual((entry.kind, entry.actor_name, entry.outcome), ("store", "alice", "deleted"))
        self.assertEqual(entry.detail, {"namespace": ["memories", "ada"], "key": "tea"})
        # Twice: already gone, said so, nothing more in the log.
        response = self.client.post(DELETE, {"namespace": "memories.ada", "key": "tea"}, follow=True)
        self.assertContains(response, "was already gone")
        self.assertEqual(AuditEntry.objects.count(), 1)

    def test_deleting_a_namespace_empties_it_and_those_below_and_nothing_else(self) -> None:
        self.login("admin")
        response = self.client.post(DELETE_NAMESPACE, {"namespace": "memories"}, follow=True)
        self.assertContains(response, "Deleted 3 items under memories.")
        self.assertEqual(list(StoreItem.objects.values_list("key", flat=True)), ["upper"])
        self.assertEqual(AuditEntry.objects.get().detail, {"namespace": ["memories"], "items": 3})
        response = self.client.post(DELETE_NAMESPACE, {"namespace": ""}, follow=True)
        self.assertContains(response, "Nothing was deleted")
        self.assertEqual(StoreItem.objects.count(), 1)

    def test_an_item_delete_with_a_forged_namespace_deletes_nothing(self) -> None:
        self.login("admin")
        response = self.client.post(DELETE, {"namespace": "", "key": "tea"}, follow=True)
        self.assertContains(response, "Nothing was deleted")
        self.assertEqual(StoreItem.objects.count(), 4)

    def test_deleting_an_item_deletes_its_vectors(self) -> None:
        store = DjangoStore(index={"dims": 512, "embed": HashingEmbeddings()})
        store.put(("docs",), "d1", {"text": "vectors go with their item"})
        self.assertEqual(StoreVector.objects.count(), 1)
        self.login("admin")
        self.client.post(DELETE, {"namespace": "docs", "key": "d1"})
        self.assertFalse(StoreVector.objects.exists())

    def test_values_keys_and_namespaces_are_shown_as_text_never_as_html(self) -> None:
        self.store.put(("evil",), HOSTILE, {HOSTILE: HOSTILE})
        self.login("admin")
        response = self.client.get(PAGE)
        self.assertNotIn(HOSTILE.encode(), response.content)

    def test_pages_of_items_link_to_each_other(self) -> None:
        for n in range(PAGE_SIZE + 3):
            self.store.put(("bulk",), f"k{n:03}", {"n": n})
        self.login("admin")
        first = self.client.get(PAGE, {"namespace": "bulk"})
        self.assertEqual(len(first.context["listing"].items), PAGE_SIZE)
        self.assertEqual(first.context["older_url"], f"{PAGE}?namespace=bulk&page=2")
        second = self.client.get(first.context["older_url"])
        self.assertEqual([i.key for i in second.context["listing"].items], ["k002", "k001", "k000"])

    def test_an_expired_item_not_yet_swept_is_marked_expired(self) -> None:
        StoreItem.objects.filter(key="born").update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
        self.login("admin")
        self.assertContains(self.client.get(PAGE), '<span class="pill">expired</span>')
