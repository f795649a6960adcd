"""factory_boy factories for tenants, providers and roster graphs."""

from __future__ import annotations

import factory

from sis_sync.models import (
    Classroom,
    Enrollment,
    ExternalIdentity,
    Person,
    ProviderType,
    School,
    SisProvider,
    Tenant,
)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"district-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SisProvider
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    provider_type = ProviderType.ONEROSTER_CSV
    name = factory.Sequence(lambda n: f"Provider {n}")

    @factory.post_generation
    def config(self, create: bool, extracted: dict | None, **kwargs: object) -> None:
        self.set_config(extracted or {})
        if create:
            self.save()


class SchoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = School

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"School {n}")


class ClassroomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Classroom

    tenant = factory.SelfAttribute("school.tenant")
    school = factory.SubFactory(SchoolFactory)
    title = factory.Sequence(lambda n: f"Class {n}")


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    tenant = factory.SubFactory(TenantFactory)
    role = "student"
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda p: f"{p.given_name}.{p.family_name}@example.org".lower())


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    tenant = factory.SelfAttribute("classroom.tenant")
    classroom = factory.SubFactory(ClassroomFactory)
    person = factory.SubFactory(PersonFactory, tenant=factory.SelfAttribute("..tenant"))
    role = "student"


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExternalIdentity

    provider = factory.SubFactory(ProviderFactory)
    tenant = factory.SelfAttribute("provider.tenant")
    entity_type = "user"
    external_id = factory.Sequence(lambda n: f"ext-{n}")
    entity_id = 0
