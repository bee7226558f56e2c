import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { api, setCsrf } from "./api";
import type { User } from "./generated/protocol";
import { Account, Admin } from "./pages/Admin";
import { Home } from "./pages/Home";
import { Join } from "./pages/Join";
import { ChoosePassword, RotateFromWarning } from "./pages/Links";
import { Setup } from "./pages/Setup";
import { SignIn } from "./pages/SignIn";
import { SignUp } from "./pages/SignUp";
import "./styles.css";

/// The app's pages by path; the server answers every page path with this app.
function App() {
  const [path, setPath] = useState(location.pathname);
  const [user, setUser] = useState<User | null | undefined>(undefined);
  // A fresh server (no organisation yet) shows its setup page to everyone
  // not signed in.
  const [setupRequired, setSetupRequired] = useState(false);

  useEffect(() => {
    // A new tab has the session cookie but not the CSRF token: /me gives both.
    api.me().then(
      (me) => {
        setCsrf(me.csrf_token);
        setUser(me.user);
      },
      async () => {
        const status = await api.setupStatus().catch(() => ({ setup_required: false }));
        setSetupRequired(status.setup_required);
        setUser(null);
      },
    );
    const onPop = () => setPath(location.pathname);
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const navigate = (to: string) => {
    history.pushState(null, "", to);
    setPath(to);
  };
  const signOut = async () => {
    await api.logout().catch(() => undefined);
    setCsrf(null);
    setUser(null);
    navigate("/");
  };

  if (user === undefined) return <main className="center">Loading…</main>;
  // Links from emails work whether or not someone is signed in here.
  if (path === "/reset") return <ChoosePassword done={() => { setUser(null); navigate("/"); }} />;
  if (path === "/rotate") return <RotateFromWarning />;
  if (!user && setupRequired) {
    return (
      <Setup
        onSignedIn={(u, next) => {
          setSetupRequired(false);
          setUser(u);
          navigate(next);
        }}
      />
    );
  }
  const join = path.match(/^\/j\/([A-Za-z0-9]+)$/);
  if (join) return <Join linkSecret={join[1]} user={user} navigate={navigate} />;
  if (path === "/join") return <Join linkSecret={null} user={user} navigate={navigate} />;

  const signedIn = (u: User, mustEnrol: boolean) => {
    setUser(u);
    navigate(mustEnrol ? "/account" : "/");
  };
  if (!user && path === "/signup") return <SignUp invite={new URLSearchParams(location.search).get("invite")} onSignedIn={signedIn} />;
  if (!user) return <SignIn onSignedIn={signedIn} />;
  const admin = user.role === "owner" || user.role === "admin";
  return (
    <>
      <header className="top">
        <nav aria-label="Main">
          <a href="/" onClick={(e) => { e.preventDefault(); navigate("/"); }}>Meetings</a>
          {admin ? <a href="/admin" onClick={(e) => { e.preventDefault(); navigate("/admin"); }}>Organisation</a> : null}
          <a href="/account" onClick={(e) => { e.preventDefault(); navigate("/account"); }}>Account</a>
        </nav>
        <span>
          {user.display_name} <button onClick={() => void signOut()}>Sign out</button>
        </span>
      </header>
      {path === "/admin" && admin ? <Admin user={user} /> : path === "/account" ? <Account /> : <Home user={user} navigate={navigate} />}
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
