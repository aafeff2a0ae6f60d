from django.apps import AppConfig


class FrontendConfig(AppConfig):
    name = "frontend"
    verbose_name = "Voting pages"

    def ready(self) -> None:
        from frontend.metrics import connect_signals

        connect_signals()
