from django.apps import AppConfig


class SisSyncConfig(AppConfig):
    name = "sis_sync"
    verbose_name = "SIS Sync"
