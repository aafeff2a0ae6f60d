from django.urls import path

from frontend import views

app_name = "frontend"
urlpatterns = [
    path("", views.home, name="home"),
    path("arena/<slug:slug>/", views.arena_page, name="arena"),
    path("arena/<slug:slug>/battle/", views.battle_partial, name="battle"),
    path("arena/<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("arena/<slug:slug>/votes.jsonl", views.votes_download, name="votes-download"),
    path("arena/<slug:slug>/prompt/", views.own_prompt, name="own-prompt"),
    path("battle/<uuid:battle_id>/vote/", views.vote, name="vote"),
    path("battle/<uuid:battle_id>/progress/", views.battle_progress, name="battle-progress"),
    path("battle/<uuid:battle_id>/retry/", views.battle_retry, name="battle-retry"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
]
